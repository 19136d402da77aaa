"""The stack command's user-facing behaviour: clear one-line errors, honest status."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "viewcount.cli", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=300,
    )


def test_status_of_a_stack_that_is_not_running_exits_non_zero(tmp_path):
    result = run_cli("stack", "status", env={"VIEWCOUNT_HOME": str(tmp_path)})
    assert result.returncode == 1
    states = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert states == {"kafka": "down", "cassandra": "down", "minio": "down"}


def test_status_of_the_running_stack_reports_every_server_healthy(stack):
    result = run_cli("stack", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == ["healthy"] * 3


def test_up_refuses_a_port_taken_by_someone_else_with_one_line(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_cli("stack", "up", env={
            "VIEWCOUNT_HOME": str(tmp_path), "VIEWCOUNT_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        })
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*/*.pid")), "nothing may be left running"


def test_down_on_a_stack_that_is_not_running_is_harmless(tmp_path):
    result = run_cli("stack", "down", env={"VIEWCOUNT_HOME": str(tmp_path)})
    assert result.returncode == 0
    assert result.stderr.count("not running") == 3


@pytest.mark.parametrize("args", [["stack", "sideways"], ["stack"], ["no-such-command"], ["stack", "down", "--spark"]])
def test_bad_arguments_get_one_line_and_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "error" in result.stderr


def test_init_on_running_servers_is_idempotent(stack):
    result = run_cli("stack", "init")
    assert result.returncode == 0, result.stderr
    assert "schema     up to date" in result.stderr
    assert "topics     present" in result.stderr


def test_init_names_the_server_it_cannot_reach():
    result = run_cli("stack", "init", env={"VIEWCOUNT_S3_ENDPOINT": "http://127.0.0.1:1"})
    assert result.returncode == 2
    assert "not reachable: S3 at 127.0.0.1:1 (set VIEWCOUNT_S3_ENDPOINT)" in result.stderr
