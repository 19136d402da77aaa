"""A transactional producer against the real stack: views of aborted transactions are
counted by neither layer, and the offsets of transaction markers and aborted records are
skipped offsets, not gaps, for the batch's completeness proof, the archive's quality suite
and the reconciler's archive-vs-Kafka check.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from tests.support.speed import isolated, speed_counts_of
from tests.support.batch import run_cli
from tests.support.reconcile import run_together, view

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 14)
DAY_MS = int(dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
VIDEOS = [f"txn-video-{n}" for n in range(12)]
TRANSACTIONS = 30
PER_TRANSACTION = 40


def _produce_transactions(settings, tag: str) -> tuple[Counter, int]:
    """TRANSACTIONS transactions of PER_TRANSACTION views over every partition, every third
    aborted; returns the committed views per (video, minute ms) and the aborted count."""
    from confluent_kafka import Producer

    from storage.kafka_config import client_config

    producer = Producer(client_config(settings, **{"transactional.id": f"test-{tag}"}))
    producer.init_transactions(30)
    committed, aborted = Counter(), 0
    for number in range(TRANSACTIONS):
        producer.begin_transaction()
        arrival_ms = DAY_MS + 3_600_000 + number * 120_000  # one transaction every 2 minutes from 01:00
        sent = Counter()
        for index in range(PER_TRANSACTION):
            video = VIDEOS[(number + index) % len(VIDEOS)]
            event_ms = arrival_ms - 1_000 - index * 500
            producer.produce(settings.views_topic, key=video.encode(), value=view(video, event_ms),
                             timestamp=arrival_ms + index)
            sent[(video, event_ms // 60_000 * 60_000)] += 1
        assert producer.flush(30) == 0  # in the log before the abort (an abort purges what is unsent)
        if number % 3 == 2:
            producer.abort_transaction(30)
            aborted += PER_TRANSACTION
        else:
            producer.commit_transaction(30)
            committed.update(sent)
    return committed, aborted


@pytest.fixture(scope="module")
def transactional(stack, tmp_path_factory):
    from reconcile.quality.checks import validate_archive
    from storage.topics import partition_offsets

    folder = tmp_path_factory.mktemp("transactions")
    with isolated(stack, "test-txn") as (settings, env):
        committed, aborted = _produce_transactions(settings, settings.views_topic)
        offsets = sum(end - low for low, end in partition_offsets(settings, settings.views_topic).values())
        run_together(env, ("speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "speed")),
                     ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "archive")))
        prefix = f"tests/{settings.views_topic}"
        batch = run_cli(env, "batch", "--date", str(DAY), "--output", f"s3a://{settings.s3_bucket}/{prefix}/batch")
        quality = validate_archive(DAY, settings)
        reconcile = run_cli(env, "reconcile", "--date", str(DAY), "--json", "--prefix", prefix)
        yield {"settings": settings, "committed": committed, "aborted": aborted, "offsets": offsets,
               "speed": speed_counts_of(settings, committed.keys()), "batch": batch, "quality": quality,
               "reconcile": reconcile}


def test_the_topic_holds_offsets_no_reader_receives(transactional):
    views = sum(transactional["committed"].values())
    assert transactional["aborted"] == (TRANSACTIONS // 3) * PER_TRANSACTION
    # The aborted records are in the log, and every transaction leaves a marker on each
    # partition it wrote to.
    assert transactional["offsets"] >= views + transactional["aborted"] + TRANSACTIONS


def test_the_speed_layer_counts_the_committed_views_only(transactional):
    assert transactional["speed"] == dict(transactional["committed"])


def test_the_batch_proves_the_archive_complete_through_markers_and_aborted_records(transactional):
    batch = transactional["batch"]
    assert batch.returncode == 0, batch.stderr[-3000:]
    assert "completeness ok" in batch.stderr


def test_the_archive_quality_suite_passes(transactional):
    quality = transactional["quality"]
    assert sorted(result.suite.rsplit("-", 1)[0] for result in quality.results) == ["archive_offsets",
                                                                                   "archive_records"]
    assert not quality.blocking, [(result.suite, result.critical_failed) for result in quality.blocking]


def test_the_reconciler_finds_no_gap_and_no_divergence(transactional):
    run = transactional["reconcile"]
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    views = sum(transactional["committed"].values())
    assert summary["archive_complete"] and summary["archive_gaps_total"] == 0
    assert (summary["status"], summary["cells_divergent"]) == ("pass", 0)
    assert (summary["views_speed"], summary["views_batch"]) == (views, views)
