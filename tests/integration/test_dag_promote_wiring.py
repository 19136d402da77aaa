"""The nightly DAG's promote task, run as Airflow runs it (its callable with the
published result) against the real Cassandra: it serves the version its reconcile task
compared, not the newest complete version at its own moment (a batch run by hand in
between). Two complete, passing versions of a day; the published result names the older."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from storage.batch_results import BatchStats, VersionClaim, claim_version, complete_version, read_promotion

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 10, 3)
DAGS = Path(__file__).resolve().parents[2] / "dags"


def _version(session, version: int) -> None:
    claim = VersionClaim(DAY, version, f"fp-{version}", dt.datetime(2026, 10, 4, 1, tzinfo=dt.timezone.utc), False)
    assert claim_version(session, claim)
    complete_version(session, claim, BatchStats(10, {}, 0, 0, 0, 1, 10, 1), f"s3a://nowhere/{version}")


def test_promote_serves_the_version_its_reconcile_task_compared(cassandra_session, tmp_path_factory):
    from storage.reconciliations import write_summary

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    promote = DagBag(dag_folder=str(DAGS)).dags["viewcount_nightly"].get_task("promote")
    for version in (1, 2):
        _version(cassandra_session, version)
        write_summary(cassandra_session, DAY, {"status": "pass", "batch_version": version, "report_uri": "s3://r"})
    published = {"status": "pass", "report_uri": "s3://r", "batch_version": 1, "blocking": []}

    served = promote.python_callable(published, ds=DAY.isoformat())

    assert served == 1 and read_promotion(cassandra_session, DAY).version == 1
