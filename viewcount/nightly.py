"""``viewcount nightly --date D [--to D2]``: the nightly DAG for a day, without a scheduler.

Runs ``airflow dags test viewcount_nightly D`` (one process, every task in order, retries
included) against a private Airflow home under the run directory: SQLite metadata,
migrated once per Airflow version, the project's ``dags/`` folder, and the Spark
connection ``viewcount_spark`` pointing at the venv's ``spark-submit`` with a local master.
With ``--to`` it runs each day of the range in turn (a backfill); a failed day stops the
range. Airflow's own log goes to a file; the terminal gets one line per task outcome. The
home is the one ``viewcount airflow up`` deploys; while its scheduler runs, days are
triggered there instead (``viewcount airflow trigger``) and this command refuses.

Exit status: 0 when every day's run succeeded, 1 when a run failed (its log is named).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import time
from pathlib import Path

from counting.window import parse_day
from infra.airflow import running as running_processes
from infra.airflow_api import DAG_ID
from infra.airflow_home import airflow_environment, ensure_metadata_db, start_airflow
from storage.reachability import require_reachable
from settings.environment import DagKnobs, Settings
from settings.errors import UserError, argument_type

log = logging.getLogger(__name__)

MAX_DAYS = 31
# From Airflow's log of ``dags test``: which task starts, and each state it is given.
TASK_STARTS = re.compile(r"\[DAG TEST\] starting task_id=([\w.]+)")
NEW_STATE = re.compile(r"new_state=(\w+)")
ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception|Failed): .+")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=argument_type(parse_day), required=True, metavar="D",
                        help="the logical day to prove and promote")
    parser.add_argument("--to", type=argument_type(parse_day), metavar="D2",
                        help=f"run every day from D to D2 inclusive, in order (at most {MAX_DAYS} days)")
    parser.add_argument("--spark-master", metavar="URL",
                        help="master for the batch task's spark-submit (default: VIEWCOUNT_SPARK_MASTER or local[2])")


class DagLog:
    """Reads ``dags test`` output line by line: each task's new states, and the last line of
    each exception, tagged with the task that raised it."""

    def __init__(self) -> None:
        self.task = "?"
        self.errors: list[str] = []

    def read(self, line: str) -> tuple[str, str] | None:
        """(task, state) when the line gives a task a new state, else None."""
        if starts := TASK_STARTS.search(line):
            self.task = starts.group(1)
        elif state := NEW_STATE.search(line):
            return self.task, state.group(1)
        elif ERROR_LINE.match(line):
            self.errors.append(f"{self.task}: {line.strip()}")
        return None


def run_day(day: dt.date, env: dict[str, str], dag_log: Path) -> bool:
    """One DAG run for ``day``; True when it succeeded. Task outcomes are echoed as they happen."""
    started = time.monotonic()
    log.info(f"airflow dags test {DAG_ID} {day} (log: {dag_log})")
    process, handle = start_airflow(env, "dags", "test", DAG_ID, day.isoformat(), log=dag_log)
    reader = DagLog()
    with handle:
        for line in process.stdout:
            handle.write(line)
            if outcome := reader.read(line):
                log.info(f"  {outcome[0]:<18} {outcome[1]:<17} {time.monotonic() - started:5.0f} s")
    succeeded = process.wait() == 0
    verdict = "succeeded" if succeeded else "FAILED"
    log.log(logging.INFO if succeeded else logging.ERROR,
            f"{DAG_ID} {day}: {verdict} in {time.monotonic() - started:.0f} s")
    for reason in dict.fromkeys(reader.errors[-6:]) if not succeeded else []:
        log.error(f"  {reason[:400]}")
    return succeeded


def days_of(first: dt.date, last: dt.date | None) -> list[dt.date]:
    last = last or first
    if last < first:
        raise UserError(f"--to {last} is before --date {first}")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise UserError(f"{count} days asked; run at most {MAX_DAYS} at a time")
    return [first + dt.timedelta(days=offset) for offset in range(count)]


def run(args: argparse.Namespace) -> int:
    days = days_of(args.date, args.to)
    settings = Settings.from_env()
    require_reachable(settings, "kafka", "cassandra", "s3")  # not a DAG run of failing retries
    env = airflow_environment(settings, DagKnobs.from_env(), args.spark_master)
    if "scheduler" in running_processes(settings, env):
        # Its scheduler would run the tasks of a `dags test` run a second time.
        raise UserError(f"Airflow's scheduler runs on {env['AIRFLOW_HOME']}: trigger the day with "
                        "`viewcount airflow trigger --date D`, or stop it first (`viewcount airflow down`)")
    logs = Path(env["AIRFLOW_HOME"]) / "runs"
    logs.mkdir(exist_ok=True)
    ensure_metadata_db(env, logs / "db-migrate.log")
    for day in days:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if not run_day(day, env, logs / f"{DAG_ID}-{day}-{stamp}.log"):
            return 1
    return 0
