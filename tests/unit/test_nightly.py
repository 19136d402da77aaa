"""`viewcount nightly` and the demo's pure parts: arguments, the Airflow environment, the
progress lines read from Airflow's log, the demo catalog."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from settings.errors import UserError
from settings.environment import DagKnobs, Settings
from infra.airflow_home import airflow_environment
from demo import cycle as demo
from viewcount import nightly


def _viewcount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewcount.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, message", [
    (["nightly"], "the following arguments are required: --date"),
    (["nightly", "--date", "2026-13-01"], "'2026-13-01' is not a date"),
    (["nightly", "--date", "yesterday"], "'yesterday' is not a date"),
    (["nightly", "--date", "2026-11-20", "--to", "2026-11-19"], "--to 2026-11-19 is before --date 2026-11-20"),
    (["nightly", "--date", "2026-01-01", "--to", "2026-03-01"], "60 days asked; run at most 31 at a time"),
])
def test_bad_arguments_are_one_line_errors(args, message):
    result = _viewcount(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) <= 2, result.stderr


def test_days_of_a_range_in_order():
    assert nightly.days_of(dt.date(2026, 11, 30), dt.date(2026, 12, 2)) == [
        dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 2)]
    assert nightly.days_of(dt.date(2026, 11, 30), None) == [dt.date(2026, 11, 30)]
    with pytest.raises(UserError):
        nightly.days_of(dt.date(2026, 11, 30), dt.date(2026, 11, 29))


def test_the_airflow_environment_is_private_and_points_at_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("VIEWCOUNT_AIRFLOW_HOME", raising=False)
    settings = Settings.from_env().replaced(run_dir=tmp_path)
    env = airflow_environment(settings, DagKnobs.from_env(), "local[2]")
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}"
    assert Path(env["AIRFLOW__CORE__DAGS_FOLDER"], "viewcount_nightly.py").is_file()
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    connection = json.loads(env["AIRFLOW_CONN_VIEWCOUNT_SPARK"])
    assert connection == {"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}}
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)  # the venv's spark-submit first

    monkeypatch.setenv("VIEWCOUNT_AIRFLOW_HOME", str(tmp_path / "elsewhere"))
    assert airflow_environment(settings, DagKnobs.from_env())["AIRFLOW_HOME"] == str(tmp_path / "elsewhere")


def test_the_spark_connection_gives_spark_submit_a_local_master(tmp_path, monkeypatch):
    """The provider builds the master URL from the connection; it must not fall back to yarn."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    env = airflow_environment(Settings.from_env().replaced(run_dir=tmp_path), DagKnobs.from_env(), "local[2]")
    monkeypatch.setenv("AIRFLOW_CONN_VIEWCOUNT_SPARK", env["AIRFLOW_CONN_VIEWCOUNT_SPARK"])
    command = SparkSubmitHook(conn_id="viewcount_spark")._build_spark_submit_command("job.py")
    assert command[:3] == ["spark-submit", "--master", "local[2]"]
    assert command[command.index("--deploy-mode") + 1] == "client"


AIRFLOW_LOG = """\
2026-11-26T14:27:08.1Z [info     ] [DAG TEST] starting task_id=archive_complete map_index=-1 [airflow.sdk]
2026-11-26T14:27:19.1Z [info     ] Task instance state updated [x] loc=task_instances.py:485 new_state=success
2026-11-26T14:27:20.1Z [info     ] [DAG TEST] starting task_id=validate_archive map_index=-1 [airflow.sdk]
Traceback (most recent call last):
reconcile.quality.checks.QualityGateFailed: day 2026-11-25 failed critical expectations
2026-11-26T14:27:55.1Z [info     ] Task instance state updated [x] loc=task_instances.py:485 new_state=failed
"""


def test_task_outcomes_and_errors_are_read_from_airflows_log():
    reader = nightly.DagLog()
    outcomes = [outcome for line in AIRFLOW_LOG.splitlines() if (outcome := reader.read(line))]
    assert outcomes == [("archive_complete", "success"), ("validate_archive", "failed")]
    assert reader.errors == [
        "validate_archive: reconcile.quality.checks.QualityGateFailed: day 2026-11-25 failed critical expectations"]


def test_the_demo_catalog_bills_the_hottest_videos(tmp_path):
    from producer.catalog import video_ids

    billable = demo.write_demo_catalog(tmp_path / "catalog.csv", 10)
    rows = list(csv.DictReader((tmp_path / "catalog.csv").open()))
    assert billable == 3 and [row["video_id"] for row in rows] == video_ids(10)
    assert [row["billable"] for row in rows] == ["true"] * 3 + ["false"] * 7
    assert {row["rate_per_1000"] for row in rows[:3]} == {"2.50"}


def test_the_demo_day_is_the_newest_whose_cutoff_has_passed():
    utc = dt.timezone.utc
    assert demo._latest_closed_day(dt.datetime(2026, 11, 26, 1, 0, tzinfo=utc)) == dt.date(2026, 11, 25)
    assert demo._latest_closed_day(dt.datetime(2026, 11, 26, 0, 59, tzinfo=utc)) == dt.date(2026, 11, 24)


def test_the_demo_sums_the_streaming_jobs_batch_lines(tmp_path):
    log = tmp_path / "speed.log"
    log.write_text(
        "[dead-letters] batch 0: 50,000 rows in 33.11 s (1,510/s), late 0, duplicates 0, invalid 0, lag 0\n"
        "[counter] batch 0: 40,000 rows in 77.09 s (649/s), late 0, duplicates 900, invalid 200, lag 0\n"
        "[counter] batch 1: 10,000 rows in 5.73 s (0/s), late 12, duplicates 49, invalid 40, lag 0\n")
    assert demo._batch_summary(log, counting=True).startswith(
        "2 micro-batches, 50,000 records read, 949 duplicates dropped, 12 late, 240 invalid")
    assert demo._batch_summary(log, counting=False).startswith("2 micro-batches, 50,000 records read (log")


def test_the_demo_settings_and_its_commands_environment_agree(monkeypatch):
    base = Settings.defaults()
    settings, environment = demo.demo_settings(base, dt.date(2026, 11, 1), today=dt.date(2026, 11, 30))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    read = Settings.from_env()  # what each command the demo runs reads
    places = ("keyspace", "views_topic", "dlq_topic", "cells_topic", "s3_bucket", "restatement_days")
    assert [getattr(read, name) for name in places] == [getattr(settings, name) for name in places] == [
        "viewcount_demo", "demo.views", "demo.views.dlq", "demo.views.cells", "viewcount-demo", 29]

    near, environment = demo.demo_settings(base, dt.date(2026, 11, 28), today=dt.date(2026, 11, 30))
    assert near.restatement_days == base.restatement_days == 7
    assert "VIEWCOUNT_RESTATEMENT_DAYS" not in environment
