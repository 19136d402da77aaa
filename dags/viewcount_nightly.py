"""`viewcount_nightly`: prove day D's numbers and make its batch authoritative.

Wiring only: every step is a layer's entry point. Per logical day D (the data interval
[D, D+1) of a daily schedule):

    archive_complete (sensor, through D+1 00:00 + grace)
      -> validate_archive (Great Expectations)
      -> batch (SparkSubmitOperator: batch_layer/job.py --date D, local spark-submit,
         the cached connector jars)
      -> validate_batch -> reconcile -> publish_report -> gate -> promote

Every task is idempotent for its day (a rerun of batch rewrites the version with the same
input; validation and reconciliation overwrite their outputs; promotion of the same version
is a no-op), so retries and backfills are safe. A failed critical expectation or a billing
divergence fails the run at the gate, after the report is published and before promote.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import PokeReturnValue, dag, task

PROJECT = Path(__file__).resolve().parent.parent
SPARK_CONN_ID = os.environ.get("VIEWCOUNT_SPARK_CONN_ID", "viewcount_spark")
DAY = "{{ data_interval_start | ds }}"
DEFAULT_ARGS = {"retries": 2, "retry_delay": dt.timedelta(minutes=2)}


def _day(context_day: str) -> dt.date:
    return dt.date.fromisoformat(context_day)


def _gated(quality) -> str:
    """The Data Docs URI; a failed critical expectation fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from reconcile.quality.checks import QualityGateFailed

    try:
        return quality.gate()
    except QualityGateFailed as failure:
        raise AirflowFailException(str(failure)) from None


def _connector_jars() -> str:
    # Paths only: the jars are fetched by `viewcount stack up` / `make artifacts`.
    from storage.settings import Settings
    from storage.spark import connector_jars

    return ",".join(str(jar) for jar in connector_jars(Settings.from_env()))


@dag(
    dag_id="viewcount_nightly",
    schedule="@daily",
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["viewcount", "billing", "nightly"],
    doc_md=__doc__,
    # Resolved when the task runs, not when the scheduler parses this file.
    user_defined_macros={"connector_jars": _connector_jars},
)
def viewcount_nightly():
    @task.sensor(poke_interval=60, timeout=6 * 3600, mode="reschedule")
    def archive_complete(day: str = DAY) -> PokeReturnValue:
        from batch_layer.readiness import archive_gaps

        gaps = archive_gaps(_day(day))
        if gaps:
            print(f"archive of {day} not complete yet: {gaps}")
        return PokeReturnValue(is_done=not gaps)

    @task
    def validate_archive(day: str = DAY) -> str:
        from reconcile.quality.checks import validate_archive as run

        return _gated(run(_day(day)))

    batch = SparkSubmitOperator(
        task_id="batch",
        conn_id=SPARK_CONN_ID,
        application=str(PROJECT / "batch_layer" / "job.py"),
        application_args=["--date", DAY],
        jars="{{ connector_jars() }}",
        env_vars={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                  "PYTHONPATH": str(PROJECT)},
        name="viewcount-batch",
    )

    @task
    def validate_batch(day: str = DAY) -> str:
        from reconcile.quality.checks import validate_batch as run

        return _gated(run(_day(day)))

    @task
    def reconcile(day: str = DAY) -> dict:
        from reconcile.command import reconcile_for

        summary = reconcile_for(_day(day))  # stored in Cassandra and S3; XCom gets ids only
        return {"status": summary["status"], "report_uri": summary["report_uri"]}

    @task
    def publish_report(reconciled: dict, day: str = DAY) -> dict:
        from reconcile.quality.checks import validate_stored_reconciliation

        quality = validate_stored_reconciliation(_day(day))
        print(f"report: {reconciled['report_uri']}; data docs: {quality.docs_uri}")
        return {**reconciled, "blocking": [result.suite for result in quality.blocking]}

    @task
    def gate(published: dict) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        # A divergence or a bad summary will not go away on a retry: fail without one.
        if published["status"] != "pass" or published["blocking"]:
            raise AirflowFailException(f"day not promoted: status {published['status']}, failed suites "
                                       f"{published['blocking'] or 'none'}; see {published['report_uri']}")

    @task
    def promote(day: str = DAY) -> int:
        from batch_layer.promotion import promote_newest

        return promote_newest(_day(day))

    reconciled = reconcile()
    published = publish_report(reconciled)
    (archive_complete() >> validate_archive() >> batch >> validate_batch() >> reconciled)
    gate(published) >> promote()


viewcount_nightly()
