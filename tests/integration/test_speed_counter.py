"""The speed-layer counter against the real Kafka and Cassandra.

The counts must equal the oracle's, except for events the micro-batch log proves were
behind the watermark of the batch that read them; those, and only those, are missing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from viewcount import oracle

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 20)


def _env(stack, topic: str) -> dict[str, str]:
    return {**os.environ, "VIEWCOUNT_VIEWS_TOPIC": topic, "VIEWCOUNT_DLQ_TOPIC": f"{topic}.dlq"}


def _viewcount(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "viewcount.cli", *args], env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _consume(stack, topic: str) -> list:
    from confluent_kafka import Consumer, TopicPartition

    from viewcount.inspect import topic_end_offsets

    ends = topic_end_offsets(stack, topic)
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end])
    messages = []
    while len(messages) < sum(ends.values()):
        message = consumer.poll(10)
        assert message is not None, "topic ended early"
        messages.append(message)
    consumer.close()
    return messages


@pytest.fixture(scope="module")
def counted(stack, tmp_path_factory):
    """A day with duplicates, late and malformed records, counted in many small batches."""
    from storage.topics import ensure_topics

    topic = f"test-speed-{uuid.uuid4().hex[:10]}"
    ensure_topics(stack, {topic: 6, f"{topic}.dlq": 2})
    env = _env(stack, topic)
    folder = tmp_path_factory.mktemp("speed")
    _viewcount(env, "produce", "--events", "40000", "--seed", "5", "--day", DAY.isoformat(),
               "--videos", "300", "--late", "0.05", "--duplicates", "0.05", "--malformed", "0.02",
               "--oracle", str(folder / "oracle"))
    # Small batches, so the watermark moves between them and some late events are dropped.
    run = _viewcount(env, "speed", "--available-now", "--max-offsets-per-trigger", "4000",
                     "--metrics-port", "0", "--checkpoint", str(folder / "checkpoint"))
    return {"topic": topic, "folder": folder, "stderr": run.stderr}


def _logged_batches(stack, checkpoint) -> list:
    from storage.cassandra import connect
    from speed_layer.microbatch_log import MicrobatchLog

    query_id = json.loads(
        (checkpoint / "counts" / "metadata").read_text().splitlines()[0])["id"]
    session = connect(stack)
    try:
        return MicrobatchLog(session, query_id).batches()
    finally:
        session.cluster.shutdown()


def _dropped_as_late(record, event_time_ms: int, batches) -> bool:
    """Spark drops a row in batch N when event_time <= the watermark of batch N-1."""
    for batch in batches:
        start = batch.start_offsets.get(record.partition())
        end = batch.end_offsets.get(record.partition())
        if start is not None and start <= record.offset() < end:
            return batch.late_watermark_ms > 0 and event_time_ms <= batch.late_watermark_ms
    raise AssertionError(f"offset {record.partition()}/{record.offset()} is in no logged batch")


def test_counts_equal_the_oracle_except_events_the_log_proves_late(stack, counted):
    from viewcount.inspect import speed_counts_for

    messages = _consume(stack, counted["topic"])
    batches = _logged_batches(stack, counted["folder"] / "checkpoint")
    assert len(batches) > 5, "the run must span several micro-batches"

    counter, late_cells = oracle.ViewCounter(), Counter()
    for message in messages:
        reason, event = oracle.classify(message.value(), message.timestamp()[1])
        if event is None:
            continue
        if _dropped_as_late(message, event.event_time_us // 1000, batches):
            late_cells[(event.video_id, event.event_time_us // 60_000_000 * 60_000)] += 1
            continue
        counter.add(message.value(), message.timestamp()[1])
    expected = counter.views()
    videos = {video for video, _ in expected} | {video for video, _ in late_cells}
    actual = {}
    for day in {DAY - dt.timedelta(days=1), DAY}:
        actual.update(speed_counts_for(stack, videos, day))

    assert actual == expected
    assert sum(late_cells.values()) > 0, "the test must exercise beyond-watermark lateness"
    # Spark's own count of rows it dropped behind the watermark agrees with the proof.
    assert sum(batch.late_dropped or 0 for batch in batches) == sum(late_cells.values())


def test_every_invalid_record_is_in_the_dead_letter_topic_with_its_reason(stack, counted):
    summary = json.loads((counted["folder"] / "oracle" / "summary.json").read_text())
    dead = _consume(stack, f"{counted['topic']}.dlq")
    reasons = Counter(dict(m.headers())["reason"].decode() for m in dead)
    expected = {reason: count for reason, count in summary["invalid"].items() if count}
    assert reasons == expected
    source = {m.offset(): m for m in _consume(stack, counted["topic"]) if m.partition() == 0}
    for message in dead:
        headers = dict(message.headers())
        if headers["source_partition"] == b"0":
            original = source[int(headers["source_offset"])]
            assert message.value() == original.value() and message.key() == original.key()


def test_batch_log_accounts_for_every_record_and_prints_progress(stack, counted):
    batches = _logged_batches(stack, counted["folder"] / "checkpoint")
    summary = json.loads((counted["folder"] / "oracle" / "summary.json").read_text())
    assert sum(batch.rows_in or 0 for batch in batches) == summary["records_sent"]
    invalid = Counter()
    for batch in batches:
        invalid.update(batch.invalid or {})
    assert {k: v for k, v in invalid.items() if v} == {k: v for k, v in summary["invalid"].items() if v}
    assert "[counter] batch 0:" in counted["stderr"]
