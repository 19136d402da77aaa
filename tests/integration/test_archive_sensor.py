"""The nightly DAG's archive_complete sensor, run as Airflow runs it (its callable) against
the real Cassandra: a gap no wait can close (an archiver batch lost below what the
archiver committed) fails the task at once with its reason, instead of rescheduling the
sensor for hours; a complete archive lets the run go on."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest

from storage.archive import HourCompleteness, write_committed_offsets, write_hours

pytestmark = pytest.mark.integration

D = dt.date(2025, 1, 10)
DAGS = Path(__file__).resolve().parents[2] / "dags"


def _rows(lost_batch: bool) -> list[HourCompleteness]:
    rows = [HourCompleteness(D - dt.timedelta(days=1), 22, 0, 0, 0, 9, 10),
            HourCompleteness(D, 4, 0, 1, 10, 19, 10),
            HourCompleteness(D, 5, 0, 2, 20, 29, 10),
            HourCompleteness(D + dt.timedelta(days=1), 3, 0, 3, 30, 39, 10)]
    return [row for row in rows if not (lost_batch and row.batch_id == 1)]


@pytest.fixture()
def sensor(stack, tmp_path_factory, monkeypatch):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags["viewcount_nightly"].get_task("archive_complete").python_callable


@pytest.mark.parametrize("lost_batch", [True, False])
def test_a_gap_no_wait_closes_fails_the_sensor_at_once(sensor, cassandra_session, monkeypatch, lost_batch):
    from airflow.sdk.exceptions import AirflowFailException

    topic = f"sensor-{uuid.uuid4().hex[:10]}"  # the sensor reads this topic's archive rows only
    monkeypatch.setenv("VIEWCOUNT_VIEWS_TOPIC", topic)
    write_hours(cassandra_session, topic, _rows(lost_batch))
    write_committed_offsets(cassandra_session, topic, {0: 40}, batch_id=3)

    if lost_batch:
        with pytest.raises(AirflowFailException) as failed:
            sensor(ds=D.isoformat())
        assert "partition 0: offsets 10-19 missing" in str(failed.value)
        assert "no wait will close them" in str(failed.value)
    else:
        assert sensor(ds=D.isoformat()).is_done
