"""``viewcount nightly --date D [--to D2]``: the nightly DAG for a day, without a scheduler.

Runs ``airflow dags test viewcount_nightly D`` (one process, every task in order, retries
included) against a private Airflow home under the run directory: SQLite metadata,
migrated once per Airflow version, the project's ``dags/`` folder, and the Spark
connection ``viewcount_spark`` pointing at the venv's ``spark-submit`` with a local master.
With ``--to`` it runs each day of the range in turn (a backfill); a failed day stops the
range. Airflow's own log goes to a file; the terminal gets one line per task outcome.

Exit status: 0 when every day's run succeeded, 1 when a run failed (its log is named).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from counting.window import parse_day
from storage.reachability import require_reachable
from storage.settings import DagKnobs, Settings
from viewcount.errors import UserError

DAG_ID = "viewcount_nightly"
PROJECT = Path(__file__).resolve().parent.parent
MAX_DAYS = 31
# From Airflow's log of ``dags test``: which task starts, and each state it is given.
TASK_STARTS = re.compile(r"\[DAG TEST\] starting task_id=([\w.]+)")
NEW_STATE = re.compile(r"new_state=(\w+)")
ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception|Failed): .+")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=parse_day, required=True, metavar="D", help="the logical day to prove and promote")
    parser.add_argument("--to", type=parse_day, metavar="D2",
                        help=f"run every day from D to D2 inclusive, in order (at most {MAX_DAYS} days)")
    parser.add_argument("--spark-master", metavar="URL",
                        help="master for the batch task's spark-submit (default: VIEWCOUNT_SPARK_MASTER or local[2])")


def airflow_environment(settings: Settings, spark_master: str | None = None) -> dict[str, str]:
    """The environment the DAG runs under: the caller's, plus a private Airflow home
    (VIEWCOUNT_AIRFLOW_HOME, default <run dir>/airflow)."""
    home = DagKnobs.from_env().nightly_airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    connection = {"conn_type": "spark", "host": spark_master or settings.spark.spark_master,
                  "extra": {"deploy-mode": "client"}}
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW_CONN_VIEWCOUNT_SPARK": json.dumps(connection),
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
    }


def _airflow(env: dict[str, str], *args: str, log: Path):
    """``airflow ARGS`` with its output piped back, and the log file it is copied to."""
    airflow = Path(sys.executable).parent / "airflow"
    process = subprocess.Popen([str(airflow), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1, cwd=env["AIRFLOW_HOME"])
    return process, log.open("a")


def ensure_metadata_db(env: dict[str, str], log: Path) -> None:
    """``airflow db migrate`` once per Airflow version; later runs find the marker and skip it."""
    from importlib.metadata import version

    marker = Path(env["AIRFLOW_HOME"]) / f"migrated-{version('apache-airflow')}"
    if marker.exists():
        return
    print("airflow: migrating the metadata database (first run only)", file=sys.stderr, flush=True)
    process, handle = _airflow(env, "db", "migrate", log=log)
    with handle:
        for line in process.stdout:
            handle.write(line)
    if process.wait() != 0:
        raise UserError(f"`airflow db migrate` failed; see {log}")
    marker.touch()


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


def run_day(day: dt.date, env: dict[str, str], log: Path) -> bool:
    """One DAG run for ``day``; True when it succeeded. Task outcomes are echoed as they happen."""
    started = time.monotonic()
    print(f"airflow dags test {DAG_ID} {day} (log: {log})", file=sys.stderr, flush=True)
    process, handle = _airflow(env, "dags", "test", DAG_ID, day.isoformat(), log=log)
    reader = DagLog()
    with handle:
        for line in process.stdout:
            handle.write(line)
            if outcome := reader.read(line):
                print(f"  {outcome[0]:<18} {outcome[1]:<17} {time.monotonic() - started:5.0f} s",
                      file=sys.stderr, flush=True)
    succeeded = process.wait() == 0
    verdict = "succeeded" if succeeded else "FAILED"
    print(f"{DAG_ID} {day}: {verdict} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    for reason in dict.fromkeys(reader.errors[-6:]) if not succeeded else []:
        print(f"  {reason[:400]}", file=sys.stderr)
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
    env = airflow_environment(settings, args.spark_master)
    logs = Path(env["AIRFLOW_HOME"]) / "runs"
    logs.mkdir(exist_ok=True)
    ensure_metadata_db(env, logs / "db-migrate.log")
    for day in days:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if not run_day(day, env, logs / f"{DAG_ID}-{day}-{stamp}.log"):
            return 1
    return 0
