"""Restatement of a closed day, end to end on the real stack (`viewcount nightly`, Kafka,
the counter and archiver, Cassandra, MinIO, the API).

Day D is produced, counted, archived and promoted by its nightly run. Then records stamped
inside D's window reach the log after D's final version read it: a plain producer with an
old timestamp (a retry through a failover, a clock behind), and a transaction opened
before the next day's records and committed only after them (open across the cutoff).
While it is open, the next day's archive is not complete and says why. Once it commits,
the next night (D+1) promotes D+1 and restates D: a new version equal to the oracle's
numbers plus the late views, reconciled, promoted with a restatement record, and the API
answers D's new numbers.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from tests.support.nightly import TASK_LINE, day_state
from tests.support.speed import isolated, viewcount
from tests.support.batch import run_cli
from tests.support.reconcile import (
    day_start_ms, run_together, send, view, write_catalog_csv,
)
from tests.support.serve import serve_running
from oracle import counts as oracle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3000)]

D = dt.date(2026, 11, 16)
NEXT = D + dt.timedelta(days=1)
VIDEOS = 200
PLAIN, TRANSACTED = "late-plain", "late-txn"
PLAIN_VIEWS, TRANSACTED_VIEWS = 20, 10
PLAIN_MS = day_start_ms(D) + 10 * 3_600_000 + 30 * 60_000  # D 10:30
TRANSACTED_MS = day_start_ms(D) + 11 * 3_600_000  # D 11:00
RATE = "0.5"  # per 1,000 views, both late videos billable in USD


def _oracle(folder) -> dict:
    return oracle.read_counts(folder / "counts.parquet")


def _open_transaction(settings):
    """A transaction holding TRANSACTED_VIEWS views stamped in D, in the log but not committed."""
    from confluent_kafka import Producer

    from storage.kafka_config import client_config

    producer = Producer(client_config(settings, **{"transactional.id": f"restate-{settings.views_topic}"}))
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(TRANSACTED_VIEWS):
        producer.produce(settings.views_topic, key=TRANSACTED.encode(), value=view(TRANSACTED, TRANSACTED_MS + n),
                         partition=1, timestamp=TRANSACTED_MS + 500 + n)
    assert producer.flush(30) == 0
    return producer


def _views(url: str, video: str, day: dt.date) -> dict:
    start, end = day.isoformat() + "T00:00:00Z", (day + dt.timedelta(days=1)).isoformat() + "T00:00:00Z"
    answer = httpx.get(f"{url}/v1/videos/{video}/views", params={"start": start, "end": end}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def restated(stack, tmp_path_factory):
    from batch_layer.readiness import archive_readiness
    from storage.cassandra import connect
    from storage.restatements import read_request, read_restatements

    folder = tmp_path_factory.mktemp("restatement")
    with isolated(stack, "test-restate") as (settings, env):
        env = {**env, "VIEWCOUNT_AIRFLOW_HOME": str(folder / "airflow"), "VIEWCOUNT_DAG_RETRY_DELAY_SECONDS": "5"}
        jobs = (("speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "speed")),
                ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "archive")))
        viewcount(env, "produce", "--events", "3000", "--seed", "5", "--day", str(D), "--videos", str(VIDEOS),
                  "--oracle", str(folder / "oracle-d"))
        catalog = folder / "catalog.csv"
        write_catalog_csv(catalog, VIDEOS)
        with catalog.open("a") as lines:
            for video in (PLAIN, TRANSACTED):
                lines.write(f"{video},true,{RATE},USD,Late {video}\n")
        viewcount(env, "catalog", "load", str(catalog))
        run_together(env, *jobs)
        first = run_cli(env, "nightly", "--date", str(D), timeout=2400)
        before = day_state(settings, D)

        with serve_running(folder / "serve.log", env) as (url, _, _):
            served_before = {video: _views(url, video, D) for video in (PLAIN, TRANSACTED)}
            # After D's final version read its window: a plain record with an old timestamp ...
            send(settings, 0, [(PLAIN, view(PLAIN, PLAIN_MS + n), PLAIN_MS + 500 + n) for n in range(PLAIN_VIEWS)])
            # ... and a transaction open across the next day's records.
            producer = _open_transaction(settings)
            viewcount(env, "produce", "--events", "3000", "--seed", "6", "--day", str(NEXT), "--videos",
                      str(VIDEOS), "--oracle", str(folder / "oracle-next"))
            run_together(env, *jobs)
            while_open = archive_readiness(NEXT, settings)
            producer.commit_transaction(30)
            run_together(env, *jobs)
            after_commit = archive_readiness(NEXT, settings)
            second = run_cli(env, "nightly", "--date", str(NEXT), timeout=2400)
            promoted_at = time.monotonic()
            served_after = {}
            while time.monotonic() - promoted_at < 1.5:  # the API's promotion delay is 1 s
                served_after = {video: _views(url, video, D) for video in (PLAIN, TRANSACTED)}
                if all(answer["views"] for answer in served_after.values()):
                    break
                time.sleep(0.1)
            waited = time.monotonic() - promoted_at
        session = connect(settings)
        try:
            records, request = read_restatements(session, D), read_request(session, settings.views_topic, D)
        finally:
            session.cluster.shutdown()
        yield {"first": first, "before": before, "served_before": served_before, "while_open": while_open,
               "after_commit": after_commit, "second": second, "after": day_state(settings, D),
               "next": day_state(settings, NEXT), "served_after": served_after, "waited": waited,
               "records": records, "request": request, "oracle_d": _oracle(folder / "oracle-d"),
               "oracle_next": _oracle(folder / "oracle-next"), "settings": settings}


def _of_day(counts: dict, day: dt.date) -> dict:
    start = day_start_ms(day)
    return {cell: views for cell, views in counts.items() if start <= cell[1] < start + 86_400_000}


def _late_cells() -> dict:
    return {(PLAIN, PLAIN_MS // 60_000 * 60_000): PLAIN_VIEWS, (TRANSACTED, TRANSACTED_MS // 60_000 * 60_000):
            TRANSACTED_VIEWS}


def test_day_d_is_promoted_first_without_the_late_views(restated):
    assert restated["first"].returncode == 0, restated["first"].stderr[-4000:]
    assert restated["before"].promoted == 1
    assert restated["before"].cells == _of_day(restated["oracle_d"], D)
    assert [restated["served_before"][video]["views"] for video in (PLAIN, TRANSACTED)] == [0, 0]
    assert all(answer["final"] for answer in restated["served_before"].values())


def test_the_open_transaction_holds_the_next_day_and_is_named_until_it_commits(restated):
    waiting = restated["while_open"]
    assert not waiting.ready and waiting.lasting == ()
    assert any("a transaction open at offset" in line and line.startswith("partition 1:") for line in waiting.waiting)
    assert restated["after_commit"].ready, restated["after_commit"]


def test_the_next_night_promotes_its_own_day(restated):
    second = restated["second"]
    assert second.returncode == 0, second.stderr[-4000:]
    outcomes = dict(TASK_LINE.findall(second.stderr))
    assert outcomes["promote"] == "success" and outcomes["restate"] == "success"
    assert restated["next"].promoted == 1
    assert restated["next"].cells == _of_day(restated["oracle_next"], NEXT)


def test_the_closed_day_is_restated_to_the_oracles_numbers_plus_the_late_views(restated):
    after = restated["after"]
    assert after.promoted == 2
    # The next day's production holds views of D that arrived after D's batch but before its
    # cutoff (late records of the first minutes): they are restated in too.
    expected = Counter(_of_day(restated["oracle_d"], D)) + Counter(_of_day(restated["oracle_next"], D))
    assert after.cells == dict(expected + Counter(_late_cells()))
    assert after.summary["status"] == "pass" and after.summary["batch_version"] == 2


def test_the_restatement_is_recorded_with_its_views_and_money(restated):
    [record] = restated["records"]
    assert (record.old_version, record.new_version) == (1, 2)
    next_day_views = sum(_of_day(restated["oracle_next"], D).values())
    assert record.views_delta == PLAIN_VIEWS + TRANSACTED_VIEWS + next_day_views
    assert record.videos_changed == len(record.videos) >= 2
    assert sum(v.new_views - v.old_views for v in record.videos) == record.views_delta
    usd = sum((Decimal(v.money_delta) for v in record.videos if v.currency == "USD"), Decimal(0))
    assert Decimal(record.money_delta["USD"]) == usd >= Decimal("0.015")
    late = {v.video_id: (v.old_views, v.new_views, Decimal(v.money_delta), v.currency) for v in record.videos
            if v.video_id in (PLAIN, TRANSACTED)}
    assert late == {PLAIN: (0, PLAIN_VIEWS, Decimal("0.01"), "USD"), TRANSACTED: (0, TRANSACTED_VIEWS, Decimal("0.005"), "USD")}
    assert "after final version 1 read it" in record.reason and "restatement" in record.command
    assert restated["request"].status == "restated" and restated["request"].served_version == 2


def test_the_api_answers_the_restated_numbers_within_the_promotion_delay(restated):
    answers = restated["served_after"]
    assert [answers[video]["views"] for video in (PLAIN, TRANSACTED)] == [PLAIN_VIEWS, TRANSACTED_VIEWS]
    assert all(answer["final"] for answer in answers.values())
    assert restated["waited"] < 1.5
