"""`viewcount airflow`'s parts that need no running Airflow: arguments, the deployment's
environment and processes, the API password, the run interval, and the one-line errors of
an Airflow that is not there."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from infra import airflow
from infra.airflow_api import run_interval
from infra.airflow_home import PASSWORDS_FILE, airflow_environment, api_password, ensure_api_password
from settings.errors import UserError
from settings.environment import DagKnobs, Settings
from tests.support.ports import free_port


def _viewcount(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewcount.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.fixture()
def home_env(tmp_path):
    """The environment of a private run folder whose Airflow home is empty, on a free port."""
    return {**os.environ, "VIEWCOUNT_HOME": str(tmp_path), "VIEWCOUNT_AIRFLOW_HOME": str(tmp_path / "airflow"),
            "VIEWCOUNT_AIRFLOW_API_PORT": str(free_port())}


def _one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("args, message", [
    (["airflow"], "the following arguments are required: action"),
    (["airflow", "start"], "invalid choice: 'start'"),
    (["airflow", "trigger"], "trigger needs --date D"),
    (["airflow", "trigger", "--date", "2026-13-01"], "'2026-13-01' is not a date"),
    (["airflow", "up", "--date", "2026-11-20"], "--date does not go with up"),
    (["airflow", "status", "--wait"], "--wait does not go with status"),
    (["airflow", "trigger", "--date", "2026-11-20", "--spark-master", "local[1]"],
     "--spark-master does not go with trigger"),
])
def test_bad_arguments_are_one_line_errors(args, message, home_env):
    _one_line_error(_viewcount(*args, env=home_env), message)


def test_a_bad_api_port_names_its_variable(home_env):
    result = _viewcount("airflow", "status", env={**home_env, "VIEWCOUNT_AIRFLOW_API_PORT": "99999"})
    _one_line_error(result, "VIEWCOUNT_AIRFLOW_API_PORT must be at most 65535, got '99999'")


def test_an_unreachable_api_is_one_line(home_env, tmp_path):
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / PASSWORDS_FILE).write_text(json.dumps({"viewcount": "secret"}))
    result = _viewcount("airflow", "trigger", "--date", "2026-11-20", env=home_env)
    _one_line_error(result, f"the Airflow API at http://127.0.0.1:{home_env['VIEWCOUNT_AIRFLOW_API_PORT']} "
                            "is not reachable")
    assert "viewcount airflow up" in result.stderr


def test_a_home_never_started_has_no_password(home_env, tmp_path):
    result = _viewcount("airflow", "trigger", "--date", "2026-11-20", env=home_env)
    _one_line_error(result, f"no Airflow API password in {tmp_path / 'airflow' / PASSWORDS_FILE}")


def test_status_and_down_of_nothing_running(home_env):
    status = _viewcount("airflow", "status", env=home_env)
    assert status.returncode == 1 and "Traceback" not in status.stderr
    states = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()[1:4]}
    assert states == {"api-server": "down", "scheduler": "down", "dag-processor": "down"}
    down = _viewcount("airflow", "down", env=home_env)
    assert down.returncode == 0 and down.stderr.count("not running") == 3, down.stderr


def test_the_deployment_listens_on_loopback_at_the_port_knob(tmp_path, monkeypatch):
    monkeypatch.delenv("VIEWCOUNT_AIRFLOW_HOME", raising=False)
    monkeypatch.setenv("VIEWCOUNT_AIRFLOW_API_PORT", "18794")
    env = airflow_environment(Settings.from_env().replaced(run_dir=tmp_path), DagKnobs.from_env())
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__PORT"] == "18794"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18794"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18794/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "viewcount:admin"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(tmp_path / "airflow" / PASSWORDS_FILE)
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env or \
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"].lower() != "true"


@pytest.mark.parametrize("value", ["True", "true", "1"])
def test_the_callers_shell_cannot_switch_the_login_off(tmp_path, monkeypatch, value):
    """With SimpleAuthManager's all-admins switch on, every request to the API server is an
    admin's, password or not: anyone on the machine could trigger, clear or delete runs."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", value)
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", "airflow.api_fastapi.auth.managers.simple.x.Other")
    env = airflow_environment(Settings.from_env().replaced(run_dir=tmp_path), DagKnobs.from_env())
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")


def test_each_process_is_marked_as_this_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWCOUNT_AIRFLOW_API_PORT", "18794")
    monkeypatch.setenv("VIEWCOUNT_AIRFLOW_HOME", str(tmp_path / "airflow"))
    settings = Settings.from_env().replaced(run_dir=tmp_path)
    env = airflow_environment(settings, DagKnobs.from_env())
    processes = {process.name: process for process in airflow.airflow_processes(settings, env)}
    assert set(processes) == {"api-server", "scheduler", "dag-processor"}
    for name in ("scheduler", "dag-processor"):
        command, _ = processes[name].command()
        assert command[1] == name and processes[name].marker in " ".join(command)
        assert processes[name].pid_path == tmp_path / "airflow" / f"{name}.pid"
        assert processes[name].log_path == tmp_path / "airflow" / f"{name}.log"
    scheduler, _ = processes["scheduler"].command()
    assert "--skip-serve-logs" in scheduler  # its log server would listen on every address
    api, _ = processes["api-server"].command()
    assert api[api.index("--host") + 1] == "127.0.0.1" and api[api.index("--port") + 1] == "18794"
    assert processes["api-server"].ports() == [("127.0.0.1", 18794)]
    # Known as this home's before it retitles itself (its pid file's path) and after.
    api_server = processes["api-server"]
    assert api_server.owns(" ".join(api)) and api_server.owns("airflow api_server -- host:127.0.0.1 port:18794")
    assert not api_server.owns("airflow api_server -- host:127.0.0.1 port:8794")


def test_the_api_password_is_written_once_and_private(tmp_path):
    env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / PASSWORDS_FILE)}
    path = ensure_api_password(env)
    first = api_password(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600 and len(first) >= 20
    ensure_api_password(env)
    assert api_password(tmp_path) == first
    path.write_text("{}")
    with pytest.raises(UserError, match="no Airflow API password"):
        api_password(tmp_path)


def test_a_days_run_covers_the_day_in_utc():
    assert run_interval(dt.date(2026, 11, 30)) == ("2026-11-30T00:00:00+00:00", "2026-12-01T00:00:00+00:00")
