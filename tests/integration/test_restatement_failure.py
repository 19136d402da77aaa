"""A restatement that cannot pass leaves the old version serving, its request 'failed'
(what /metrics counts and ViewcountRestatementFailed fires on) and the task failed,
naming the day; the DAG's restate task, run as Airflow runs it, against Cassandra.

The day here has a promoted version but no archive, so its restatement fails before it
counts anything; what is checked is what any failure leaves behind."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from storage.batch_results import BatchStats, VersionClaim, claim_version, complete_version, promote, read_promotion

pytestmark = pytest.mark.integration

DAY = dt.date(2025, 3, 4)
DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_a_failed_restatement_keeps_the_old_version_and_leaves_its_request_failed(stack, cassandra_session,
                                                                                  tmp_path_factory):
    from airflow.sdk.exceptions import AirflowFailException

    from storage.restatements import FAILED, read_request, read_restatements

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    restate = DagBag(dag_folder=str(DAGS)).dags["viewcount_nightly"].get_task("restate").python_callable
    claim = VersionClaim(DAY, 1, "fp-1", dt.datetime(2025, 3, 5, 1, tzinfo=dt.timezone.utc), False)
    assert claim_version(cassandra_session, claim)
    complete_version(cassandra_session, claim, BatchStats(5, {}, 0, 0, 0, 1, 5, 1), "s3a://nowhere/1")
    promote(cassandra_session, DAY, 1, None)
    stale = [{"day": DAY.isoformat(), "grace": "3600s", "final_version": 1,
              "reason": "records arrived in the window after final version 1 read it: partition 0: 3 records"}]

    with pytest.raises(AirflowFailException) as failed:
        restate(stale, ds=(DAY + dt.timedelta(days=2)).isoformat())

    assert f"1 restatements failed: {DAY}:" in str(failed.value)
    request = read_request(cassandra_session, stack.views_topic, DAY)
    assert (request.status, request.served_version) == (FAILED, 1) and request.detail
    assert request.reason == stale[0]["reason"]
    assert read_promotion(cassandra_session, DAY).version == 1
    assert read_restatements(cassandra_session, DAY) == []
