"""The nightly DAG under a real Airflow: `viewcount airflow up` starts the scheduler, the DAG
processor and the API server as processes over a private Airflow home, and a day is
triggered through Airflow's REST API (`viewcount airflow trigger`: unpause, POST dagRuns).

One day is produced, counted by the speed layer and archived. Its run must succeed in
Airflow, every task green, and the day be promoted. Then one billable speed cell is
deleted and the day runs again (the run cleared through the API): the gate fails, the run
is failed in Airflow, promote never runs and the earlier promotion stays. `down` stops the
three processes at the end.

It is deployed from a shell that exports SimpleAuthManager's all-admins switch: the
deployment pins it off, so a request without a token is still refused.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.nightly import RESTATE_TASKS, TASKS, day_state
from tests.support.speed import isolated, viewcount
from tests.support.batch import run_cli
from tests.support.reconcile import (
    day_start_ms, rewrite_speed_cells, run_together, speed_rows, write_catalog_csv,
)
from tests.support.ports import free_port, listening_sockets
from oracle import counts as oracle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

DAY = dt.date(2026, 11, 14)
VIDEOS = 200
PROCESSES = ("api-server", "scheduler", "dag-processor")


@dataclass
class Deployed:
    up: object  # CompletedProcess of each command below
    up_again: object
    status: object
    nightly_refused: object
    green: object
    green_run: dict  # the run as the REST API shows it
    green_tasks: dict  # task id -> state
    green_state: object  # tests.support.nightly.DayState
    triggered_twice: object
    expected: dict
    red: object
    red_run: dict
    red_tasks: dict
    red_state: object
    pids: list
    down: object
    status_after_down: object
    listening: list  # (host, port) of the API server while it ran
    unauthenticated: tuple  # (status, body) of a POST to the DAG-run endpoint without a token


def _run_of_day(home: Path, port: int) -> tuple[dict, dict]:
    """The day's run and its task states, as Airflow's REST API shows them."""
    from infra.airflow_api import AirflowApi
    from infra.airflow_home import API_USER, api_password

    api = AirflowApi(f"http://127.0.0.1:{port}", API_USER, api_password(home))
    run = api.run_of_day(DAY)
    return run, api.task_states(run["dag_run_id"])


def _post_without_token(port: int) -> tuple[int, str]:
    """POST to the DAG-run endpoint with no credentials. Its body is invalid (a logical date
    that is no time), so that an API server that let it through answers 422 and starts no run
    the rest of the fixture would wait behind."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/dags/viewcount_nightly/dagRuns",
                                     method="POST", data=json.dumps({"logical_date": "not a time"}).encode(),
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@pytest.fixture(scope="module")
def deployed(stack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("airflow-deployed")
    port = free_port()
    with isolated(stack, "test-airflow") as (settings, env):
        env = {**env, "VIEWCOUNT_AIRFLOW_HOME": str(folder / "airflow"), "VIEWCOUNT_AIRFLOW_API_PORT": str(port),
               "VIEWCOUNT_DAG_RETRY_DELAY_SECONDS": "5",
               # This keyspace holds one day: the daily schedule would also start yesterday's
               # run on unpause, and with max_active_runs=1 the triggered day would wait behind
               # it. Triggered runs are scheduled as usual.
               "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
               # A caller's shell that would switch the login off: `airflow up` must not let it.
               "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
        viewcount(env, "produce", "--events", "4000", "--seed", "16", "--day", str(DAY), "--videos", str(VIDEOS),
                  "--oracle", str(folder / "oracle"))
        catalog = write_catalog_csv(folder / "catalog.csv", VIDEOS)
        viewcount(env, "catalog", "load", str(folder / "catalog.csv"))
        run_together(env, ("speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "speed")),
                     ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "archive")))
        start = day_start_ms(DAY)
        expected = {cell: views for cell, views in oracle.read_counts(folder / "oracle" / "counts.parquet").items()
                    if start <= cell[1] < start + 86_400_000}
        try:
            up = run_cli(env, "airflow", "up", timeout=600)
            assert up.returncode == 0, up.stderr[-3000:]
            up_again, status = run_cli(env, "airflow", "up", timeout=120), run_cli(env, "airflow", "status")
            listening = [address for address in listening_sockets().values() if address[1] == port]
            unauthenticated = _post_without_token(port)
            nightly_refused = run_cli(env, "nightly", "--date", str(DAY), timeout=120)

            green = run_cli(env, "airflow", "trigger", "--date", str(DAY), "--wait", timeout=1200)
            green_run, green_tasks = _run_of_day(folder / "airflow", port)
            green_state = day_state(settings, DAY)
            triggered_twice = run_cli(env, "airflow", "trigger", "--date", str(DAY))

            speed = speed_rows(settings, DAY)
            deleted = next(cell for cell, views in sorted(speed.items())
                           if catalog[cell[0]][0] and expected.get(cell) == views)
            rewrite_speed_cells(settings, DAY, [deleted], {})
            red = run_cli(env, "airflow", "trigger", "--date", str(DAY), "--rerun", "--wait", timeout=1200)
            red_run, red_tasks = _run_of_day(folder / "airflow", port)
            red_state = day_state(settings, DAY)
            pids = [int((folder / "airflow" / f"{name}.pid").read_text()) for name in PROCESSES]
        finally:
            down = run_cli(env, "airflow", "down", timeout=120)
        status_after_down = run_cli(env, "airflow", "status")
        yield Deployed(up, up_again, status, nightly_refused, green, green_run, green_tasks, green_state,
                       triggered_twice, expected, red, red_run, red_tasks, red_state, pids, down,
                       status_after_down, listening, unauthenticated)


def test_up_starts_three_processes_and_waits_until_healthy(deployed):
    lines = deployed.up.stderr
    for name in PROCESSES:
        assert f"  {name}" in lines and "healthy after" in lines, lines
    assert "viewcount_nightly parsed" in lines and "airflow up in" in lines
    assert "already running" in deployed.up_again.stderr and deployed.up_again.returncode == 0
    assert deployed.status.returncode == 0, deployed.status.stdout
    rows = {line.split()[0]: line.split() for line in deployed.status.stdout.splitlines()[1:4]}
    assert {name: rows[name][1] for name in PROCESSES} == {name: "healthy" for name in PROCESSES}
    assert len({rows[name][2] for name in PROCESSES}) == 3, "three separate processes"


def test_the_api_server_listens_on_loopback_only(deployed):
    assert [host for host, _ in deployed.listening] == ["127.0.0.1"]


def test_a_request_without_a_token_is_refused_whatever_the_callers_shell(deployed):
    status, body = deployed.unauthenticated
    assert status == 401, f"an unauthenticated POST to the DAG-run endpoint answered {status}: {body[:300]}"


def test_the_scheduler_keeps_viewcount_nightly_off_its_home(deployed):
    refused = deployed.nightly_refused
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "`viewcount airflow trigger --date D`" in refused.stderr


def test_a_triggered_day_runs_green_and_is_promoted(deployed):
    assert deployed.green.returncode == 0, deployed.green.stderr[-4000:]
    assert "viewcount_nightly unpaused" in deployed.green.stderr
    assert deployed.green_run["state"] == "success" and deployed.green_run["run_type"] == "manual"
    assert deployed.green_run["logical_date"].startswith(f"{DAY}T00:00:00")
    assert deployed.green_run["data_interval_end"].startswith(f"{DAY + dt.timedelta(days=1)}T00:00:00")
    assert deployed.green_tasks == {task: "success" for task in TASKS + RESTATE_TASKS}
    state = deployed.green_state
    assert state.promoted == 1 and state.summary["status"] == "pass"
    assert state.cells == deployed.expected


def test_a_day_with_a_run_is_not_triggered_twice(deployed):
    again = deployed.triggered_twice
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert f"has a run for {DAY} already ({deployed.green_run['dag_run_id']}, success); --rerun runs it again" \
        in again.stderr


def test_a_failing_gate_is_a_failed_run_in_airflow(deployed):
    red = deployed.red
    assert red.returncode == 1, red.stderr[-4000:]
    assert "cleared, it runs again" in red.stderr and ": failed in" in red.stderr
    assert deployed.red_run["dag_run_id"] == deployed.green_run["dag_run_id"]
    assert deployed.red_run["state"] == "failed"
    assert deployed.red_tasks == {**{task: "success" for task in TASKS[:6] + RESTATE_TASKS}, "gate": "failed",
                                  "promote": "upstream_failed"}
    assert deployed.red_state.promoted == 1, "the gate must keep the earlier promotion"
    assert deployed.red_state.summary["status"] == "fail"


def test_down_stops_every_process(deployed):
    assert deployed.down.returncode == 0
    assert deployed.down.stderr.count(" stopped") == 3, deployed.down.stderr
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in deployed.pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in deployed.pids if Path(f"/proc/{pid}").exists()]
    assert deployed.status_after_down.returncode == 1
    assert deployed.status_after_down.stdout.count(" down ") == 3, deployed.status_after_down.stdout
