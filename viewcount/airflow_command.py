"""``viewcount airflow up | down | status | trigger``: the nightly DAG under a real Airflow
(scheduler, DAG processor, API server), its runs triggered through Airflow's REST API."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time

from counting.window import parse_day
from settings.errors import UserError, argument_type
from settings.environment import DagKnobs, Settings

log = logging.getLogger(__name__)

WAIT_POLL_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status", "trigger"],
                        help="up: start the scheduler, DAG processor and API server and wait until healthy; "
                             "down: stop them; status: show each (exit 1 when one is not healthy); "
                             "trigger: a run of the nightly DAG for --date through the REST API")
    parser.add_argument("--date", type=argument_type(parse_day), metavar="D",
                        help="with trigger: the logical day to run")
    parser.add_argument("--rerun", action="store_true",
                        help="with trigger: when day D has a run already, clear it so that it runs again")
    parser.add_argument("--wait", action="store_true",
                        help="with trigger: wait for the run to finish; exit 0 when it succeeded, 1 when it failed")
    parser.add_argument("--spark-master", metavar="URL",
                        help="with up: master for the batch task's spark-submit (default: VIEWCOUNT_SPARK_MASTER "
                             "or local[2])")


def run(args: argparse.Namespace) -> int:
    from infra import airflow
    from infra.airflow_home import airflow_environment

    misplaced = [flag for flag, given, action in (("--date", args.date, "trigger"), ("--rerun", args.rerun, "trigger"),
                                                  ("--wait", args.wait, "trigger"),
                                                  ("--spark-master", args.spark_master, "up"))
                 if given and args.action != action]
    if misplaced:
        raise UserError(f"{misplaced[0]} does not go with {args.action}")
    settings = Settings.from_env()
    env = airflow_environment(settings, DagKnobs.from_env(), args.spark_master)
    if args.action == "up":
        airflow.up(settings, env)
        return _print_status(settings, env)
    if args.action == "down":
        airflow.down(settings, env)
        return 0
    if args.action == "status":
        return _print_status(settings, env)
    if args.date is None:
        raise UserError("trigger needs --date D")
    return trigger(airflow.client(env), args.date, rerun=args.rerun, wait=args.wait)


def _print_status(settings: Settings, env: dict[str, str]) -> int:
    from infra import airflow

    entries = airflow.status(settings, env)
    print(f"{'process':<14} {'state':<10} {'pid':>8}  log")
    for entry in entries:
        print(f"{entry.name:<14} {entry.state:<10} {entry.pid or '-':>8}  {entry.log_path}")
    print(f"UI and REST API: {env['AIRFLOW__API__BASE_URL']}")
    return 0 if all(entry.healthy for entry in entries) else 1


def trigger(api, day: dt.date, *, rerun: bool = False, wait: bool = False) -> int:
    """Unpause the nightly DAG and start its run for ``day`` (or, with ``rerun``, clear the
    day's existing run); with ``wait``, follow it to the end: 0 succeeded, 1 failed."""
    from infra.airflow_api import DAG_ID, ApiError

    dag = api.dag()
    if dag is None:
        raise UserError(f"Airflow has not parsed {DAG_ID}: start Airflow with `viewcount airflow up`, "
                        "which waits for it")
    if dag["is_paused"]:
        api.unpause()
        log.info(f"{DAG_ID} unpaused")
    try:
        run_id = api.trigger(day)["dag_run_id"]
        log.info(f"{DAG_ID} {day}: run {run_id} queued")
    except ApiError as error:
        existing = api.run_of_day(day) if error.status == 409 else None
        if existing is None:
            raise
        run_id = existing["dag_run_id"]
        if not rerun:
            raise UserError(f"{DAG_ID} has a run for {day} already ({run_id}, {existing['state']}); "
                            "--rerun runs it again") from None
        api.rerun(run_id)
        log.info(f"{DAG_ID} {day}: run {run_id} cleared, it runs again")
    log.info(f"  {api.url}/dags/{DAG_ID}/runs/{run_id}")
    return follow(api, run_id) if wait else 0


def follow(api, run_id: str) -> int:
    """Print each task's new state until the run finishes; 0 when it succeeded."""
    from infra.airflow_api import FINISHED

    from tenacity import Retrying, retry_if_result, wait_fixed

    started, seen = time.monotonic(), {}

    def run_state() -> str:
        state = api.run(run_id)["state"]
        for task, task_state in api.task_states(run_id).items():
            if task_state and seen.get(task) != task_state:
                seen[task] = task_state
                log.info(f"  {task:<18} {task_state:<17} {time.monotonic() - started:5.0f} s")
        return state

    state = Retrying(retry=retry_if_result(lambda state: state not in FINISHED),
                     wait=wait_fixed(WAIT_POLL_SECONDS))(run_state)
    log.log(logging.INFO if state == "success" else logging.ERROR,
            f"{run_id}: {state} in {time.monotonic() - started:.0f} s")
    return 0 if state == "success" else 1
