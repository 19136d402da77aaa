"""`viewcount_nightly`: prove day D's numbers and make its batch authoritative.

Wiring only: every step is a layer's entry point. Per logical day D: the schedule is a
daily data interval [D, D+1) in UTC, so the run for D is created at D+1 00:00 with logical
date D (``ds``), and ``airflow dags test viewcount_nightly D`` runs the same tasks for D:

    archive_complete (sensor, through D+1 00:00 + grace)
      -> validate_archive (Great Expectations)
      -> batch (SparkSubmitOperator: batch_layer/job.py --date D, local spark-submit,
         the cached connector jars)
      -> validate_batch -> reconcile -> publish_report -> gate -> promote
    archive_complete -> find_restatements -> restate (each promoted day of the restatement
      horizon whose window received records after its final version read it: batch,
      validate, reconcile, gate, promote with a restatement record)

Every task is idempotent for its day (a rerun of batch rewrites the version with the same
input; validation and reconciliation overwrite their outputs; promotion of the same version
is a no-op), so retries and backfills are safe. A failed critical expectation or a billing
divergence fails the run at the gate, after the report is published and before promote.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import CronDataIntervalTimetable, PokeReturnValue, dag, task

from settings.environment import DagKnobs

log = logging.getLogger(__name__)  # Airflow's own logging takes it to the task's log

PROJECT = Path(__file__).resolve().parent.parent
KNOBS = DagKnobs.from_env()  # VIEWCOUNT_SPARK_CONN_ID, VIEWCOUNT_DAG_RETRY_DELAY_SECONDS
DAY = "{{ ds }}"  # the logical day D; TaskFlow tasks get it as their ``ds`` argument
# Retries cover transient failures (a server restarting, a lost connection); the delay can be
# shortened for runs driven by hand or by tests.
DEFAULT_ARGS = {"retries": 2, "retry_delay": dt.timedelta(seconds=KNOBS.dag_retry_delay_seconds)}


def _day(ds: str | None) -> dt.date:
    """Airflow passes the run's logical day to any task parameter named ``ds``."""
    if not ds:
        raise ValueError("the task was called without the run's logical day (ds)")
    return dt.date.fromisoformat(ds)


def _gated(quality) -> str:
    """The Data Docs URI; a failed critical expectation fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from reconcile.quality.checks import QualityGateFailed

    try:
        return quality.gate()
    except QualityGateFailed as failure:
        raise AirflowFailException(str(failure)) from None


def _blocked(published: dict) -> str | None:
    """Why a reconciled version may not be promoted; None when its gate passes."""
    if published["status"] != "pass" or published["blocking"]:
        return (f"day not promoted: status {published['status']}, failed suites "
                f"{published['blocking'] or 'none'}; see {published['report_uri']}")
    return None


# The batch's Python and the project on spark-submit's environment.
_SUBMIT_ENV = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "PYTHONPATH": str(PROJECT)}


def _submit_option(option: str) -> str:
    """A spark-submit option for the connection's master (``spark_runtime.session.submit_options``):
    how the connector jars, fetched by `viewcount stack up`, reach the JVMs, and on a local
    master the class-data archive it built and the quick compiler of a short-lived job (the
    batch); empty when the master needs none."""
    from airflow.sdk import BaseHook

    from settings.environment import Settings
    from spark_runtime.session import submit_options

    master = BaseHook.get_connection(KNOBS.spark_conn_id).host
    return submit_options(Settings.from_env(), master, short_lived=True).get(option, "")


@dag(
    dag_id="viewcount_nightly",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["viewcount", "billing", "nightly"],
    doc_md=__doc__,
    # Resolved when the task runs, not when the scheduler parses this file.
    user_defined_macros={"submit_option": _submit_option},
)
def viewcount_nightly():
    @task.sensor(poke_interval=60, timeout=6 * 3600, mode="reschedule")
    def archive_complete(ds: str | None = None) -> PokeReturnValue:
        from airflow.sdk.exceptions import AirflowFailException

        from batch_layer.completeness import refusal
        from batch_layer.readiness import archive_readiness
        from settings.environment import Settings

        readiness = archive_readiness(_day(ds), Settings.from_env())
        if readiness.lasting:  # no wait closes these: fail at once, with the reason
            raise AirflowFailException(f"{refusal(_day(ds), list(readiness.lasting))}; no wait will close them")
        if readiness.waiting:
            log.info(f"archive of {ds} not complete yet: {list(readiness.waiting)}")
        return PokeReturnValue(is_done=readiness.ready)

    @task
    def find_restatements(ds: str | None = None) -> list[dict]:
        from batch_layer.restatement import find
        from settings.environment import Settings

        stale = find(_day(ds), Settings.from_env())
        for each in stale:
            log.info(f"restating {each.day}: {each.reason}")
        return [{"day": each.day.isoformat(), "grace": each.grace_text, "final_version": each.final_version,
                 "reason": each.reason} for each in stale]

    @task
    def restate(stale: list[dict], ds: str | None = None) -> list[str]:
        """Each stale promoted day: batch (its final version's cutoff) -> validate_batch ->
        reconcile -> its quality -> gate -> promote with a restatement record. A day that
        fails keeps its old version serving, its request 'failed' (the alert fires); the
        others go on, and the task fails at the end naming it."""
        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
        from airflow.sdk.exceptions import AirflowFailException

        from batch_layer.promotion import promote_version
        from batch_layer.restatement import settle
        from reconcile.command import summarize
        from reconcile.quality.checks import validate_batch, validate_stored_reconciliation
        from storage.restatements import FAILED, RESTATED
        from settings.environment import ReconcileKnobs, Settings

        settings, knobs, failed = Settings.from_env(), ReconcileKnobs.from_env(), []
        for each in stale:
            day = dt.date.fromisoformat(each["day"])
            try:
                SparkSubmitHook(
                    conn_id=KNOBS.spark_conn_id, application_args=["--date", each["day"], "--grace", each["grace"]],
                    jars=_submit_option("jars") or None, driver_class_path=_submit_option("driver_class_path") or None,
                    env_vars={**_SUBMIT_ENV, "SPARK_SUBMIT_OPTS": _submit_option("driver_java_options")},
                    name="viewcount-restate",
                ).submit(application=str(PROJECT / "batch_layer" / "job.py"))
                _gated(validate_batch(day, settings, knobs.max_restamped_share))
                summary = summarize(day, settings, knobs)
                quality = validate_stored_reconciliation(day, settings)
                blocked = _blocked({**summary, "blocking": [result.suite for result in quality.blocking]})
                if blocked:
                    raise AirflowFailException(blocked)
                outcome = promote_version(day, summary["batch_version"], settings, reason=each["reason"],
                                          command=f"viewcount_nightly {ds} (restatement)")
                log.info(outcome.line())
                settle(day, settings, RESTATED, each["reason"], served_version=outcome.version)
            except Exception as error:  # one day's failure must not stop the others
                log.error(f"restatement of {day} failed, version {each['final_version']} keeps serving: {error}")
                settle(day, settings, FAILED, each["reason"], served_version=each["final_version"],
                       detail=str(error)[:2000])
                failed.append(f"{day}: {error}")
        if failed:
            raise AirflowFailException(f"{len(failed)} restatements failed: " + "; ".join(failed))
        return [each["day"] for each in stale]

    @task
    def validate_archive(ds: str | None = None) -> str:
        from reconcile.quality.checks import validate_archive as run
        from settings.environment import Settings

        return _gated(run(_day(ds), Settings.from_env()))

    batch = SparkSubmitOperator(
        task_id="batch",
        conn_id=KNOBS.spark_conn_id,
        application=str(PROJECT / "batch_layer" / "job.py"),
        application_args=["--date", DAY],
        jars="{{ submit_option('jars') }}",
        driver_class_path="{{ submit_option('driver_class_path') }}",
        # The driver JVM's options through spark-submit's environment, not --conf: on a
        # master that needs none, an empty --conf would override the cluster's own defaults.
        env_vars={**_SUBMIT_ENV, "SPARK_SUBMIT_OPTS": "{{ submit_option('driver_java_options') }}"},
        name="viewcount-batch",
    )

    @task
    def validate_batch(ds: str | None = None) -> str:
        from reconcile.quality.checks import validate_batch as run
        from settings.environment import ReconcileKnobs, Settings

        return _gated(run(_day(ds), Settings.from_env(), ReconcileKnobs.from_env().max_restamped_share))

    @task
    def reconcile(ds: str | None = None) -> dict:
        from reconcile.command import summarize
        from settings.environment import ReconcileKnobs, Settings

        summary = summarize(_day(ds), Settings.from_env(), ReconcileKnobs.from_env())  # stored in Cassandra and S3; XCom gets ids only
        return {"status": summary["status"], "report_uri": summary["report_uri"],
                "batch_version": summary["batch_version"]}

    @task
    def publish_report(reconciled: dict, ds: str | None = None) -> dict:
        from reconcile.quality.checks import validate_stored_reconciliation
        from settings.environment import Settings

        quality = validate_stored_reconciliation(_day(ds), Settings.from_env())
        log.info(f"report: {reconciled['report_uri']}; data docs: {quality.docs_uri}")
        return {**reconciled, "blocking": [result.suite for result in quality.blocking]}

    @task
    def gate(published: dict) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        # A divergence or a bad summary will not go away on a retry: fail without one.
        if blocked := _blocked(published):
            raise AirflowFailException(blocked)

    @task
    def promote(published: dict, ds: str | None = None) -> int:
        from batch_layer.promotion import promote_version
        from settings.environment import Settings

        # The version this run reconciled, not the newest at this moment: a batch run by hand
        # in between was never reconciled. promote_version refuses one that did not pass.
        return promote_version(_day(ds), published["batch_version"], Settings.from_env(), command=f"viewcount_nightly {ds}").version

    reconciled = reconcile()
    published = publish_report(reconciled)
    complete = archive_complete()
    complete >> validate_archive() >> batch >> validate_batch() >> reconciled
    gate(published) >> promote(published)
    # Earlier promoted days whose windows received records since: a branch of its own, so
    # a restatement that fails does not hold back day D.
    restate(complete >> find_restatements())


viewcount_nightly()
