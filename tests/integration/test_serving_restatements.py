"""/metrics says how many restatement requests are pending or failed and how many
restatement records their days have (rows written with storage.restatements into the
session keyspace, under a topic of this test's own), and still answers without Cassandra."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.restatements import REFRESH_S
from serving.store import ViewStore
from storage.restatements import (FAILED, PENDING, RESTATED, Restatement, VideoDelta, delete_requests, delete_restatements,
                                  write_request, write_restatement)
from tests.support.ports import free_port
from tests.support.serving import running, samples, value

pytestmark = pytest.mark.integration

DAYS = [dt.date(2097, 3, day) for day in (1, 2, 3, 4)]
REQUESTS = "viewcount_restatement_requests"


def _record(day: dt.date, minute: int, old: int, new: int) -> Restatement:
    at = dt.datetime(2097, 3, 10, 1, minute, tzinfo=dt.timezone.utc)
    return Restatement(day, at, old, new, 4, 1, {"EUR": "0.004"}, "records after the cutoff", "viewcount promote",
                       (VideoDelta("v", 10, 14, "0.004", "EUR"),))


def test_metrics_count_pending_and_failed_requests_and_the_records_of_their_days(stack, cassandra_session):
    topic = f"test-{uuid.uuid4().hex[:12]}"
    for day, status in zip(DAYS, (PENDING, PENDING, FAILED, RESTATED)):
        write_request(cassandra_session, topic, day, status, "records after the cutoff", served_version=1)
    write_restatement(cassandra_session, _record(DAYS[3], 1, 1, 2))
    write_restatement(cassandra_session, _record(DAYS[3], 2, 2, 3))
    outside = dt.date(2097, 4, 1)  # a record of a day with no request of this topic: not counted
    write_restatement(cassandra_session, _record(outside, 3, 1, 2))
    view_store = ViewStore(stack.replaced(views_topic=topic), Limits())
    app = create_app(view_store)
    try:
        with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            metrics = samples(client.get("/metrics").text)
            assert value(metrics, REQUESTS, status="pending") == 2
            assert value(metrics, REQUESTS, status="failed") == 1
            assert value(metrics, "viewcount_restatements_recorded") == 2
            assert value(metrics, "viewcount_restatement_read_ok") == 1

            write_request(cassandra_session, topic, DAYS[0], FAILED, "gate failed", served_version=1)
            write_restatement(cassandra_session, _record(DAYS[1], 4, 1, 2))
            again = samples(client.get("/metrics").text)  # within REFRESH_S of the last read: as read then
            assert value(again, REQUESTS, status="failed") == 1
            app.state.restatements._tried_at -= REFRESH_S  # the seconds between two reads have passed
            metrics = samples(client.get("/metrics").text)
            assert value(metrics, REQUESTS, status="pending") == 1
            assert value(metrics, REQUESTS, status="failed") == 2
            assert value(metrics, "viewcount_restatements_recorded") == 3
    finally:
        view_store.close()
        delete_requests(cassandra_session, topic)
        for day in (*DAYS, outside):
            delete_restatements(cassandra_session, day)


def test_metrics_answer_without_cassandra_and_say_the_read_failed(stack):
    unreachable = ViewStore(stack.replaced(cassandra_port=free_port()), Limits())
    try:
        with running(create_app(unreachable)) as url, httpx.Client(base_url=url, timeout=30) as client:
            response = client.get("/metrics")
            assert response.status_code == 200
            metrics = samples(response.text)
            assert value(metrics, "viewcount_restatement_read_ok") == 0
            assert not any(name == REQUESTS for name, _ in metrics)  # never read: no count is made up
    finally:
        unreachable.close()
