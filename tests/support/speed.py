"""Helpers for the speed-layer tests: run the CLI, read topics back, prove late drops,
compare the archive with its topic."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from oracle import counts as oracle


@contextmanager
def isolated(stack, prefix: str):
    """Topics and a keyspace of its own, so a job's tables hold only this test's rows
    (video ids are the same in every generated run), both deleted afterwards (a broker
    holding every topic of past runs starts slower each time). Yields (settings,
    environment)."""
    from storage.cassandra import apply_migrations, drop_keyspace
    from storage.topics import delete_topics, ensure_topics

    tag = uuid.uuid4().hex[:10]
    settings = stack.replaced(keyspace=f"t_{tag}", views_topic=f"{prefix}-{tag}",
                       dlq_topic=f"{prefix}-{tag}.dlq", cells_topic=f"{prefix}-{tag}.cells")
    ensure_topics(settings, {settings.views_topic: 6, settings.dlq_topic: 2, settings.cells_topic: 2})
    apply_migrations(settings)
    env = {**os.environ, "VIEWCOUNT_KEYSPACE": settings.keyspace, "VIEWCOUNT_VIEWS_TOPIC": settings.views_topic,
           "VIEWCOUNT_DLQ_TOPIC": settings.dlq_topic, "VIEWCOUNT_CELLS_TOPIC": settings.cells_topic}
    try:
        yield settings, env
    finally:
        drop_keyspace(settings)
        delete_topics(settings, [settings.views_topic, settings.dlq_topic, settings.cells_topic])


def viewcount(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "viewcount.cli", *args], env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def start_viewcount(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "viewcount.cli", *args], env=env,
                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def kill_hard(process: subprocess.Popen) -> None:
    """kill -9 the job and everything it started (the Spark JVM included)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def wait_for(path_glob: Path, pattern: str, count: int, timeout: float = 300) -> None:
    """Until the folder holds at least `count` files matching the pattern."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(path_glob.glob(pattern))) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"no {count} files {pattern} in {path_glob} after {timeout} s")


def consume(settings, topic: str) -> list:
    from confluent_kafka import Consumer, TopicPartition

    from storage.topics import topic_end_offsets

    ends = topic_end_offsets(settings, topic)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end])
    messages = []
    while len(messages) < sum(ends.values()):
        message = consumer.poll(10)
        assert message is not None, "topic ended early"
        if not message.error():
            messages.append(message)
    consumer.close()
    return messages


def logged_batches(settings, counts_checkpoint: Path) -> list:
    from storage.speed_microbatches import MicrobatchLog
    from storage.cassandra import connect

    query_id = json.loads((counts_checkpoint / "metadata").read_text().splitlines()[0])["id"]
    session = connect(settings)
    try:
        return MicrobatchLog(session, query_id).batches()
    finally:
        session.cluster.shutdown()


def dropped_as_late(message, event_time_ms: int, batches) -> bool:
    """Spark drops a row in batch N when event_time <= the watermark of batch N-1 (0 for
    the first batch, so an event before 1970 is late from the start)."""
    for batch in batches:
        start = batch.start_offsets.get(message.partition())
        end = batch.end_offsets.get(message.partition())
        if start is not None and start <= message.offset() < end:
            return event_time_ms <= batch.late_watermark_ms
    raise AssertionError(f"offset {message.partition()}/{message.offset()} is in no logged batch")


def speed_counts_of(settings, cells) -> dict:
    """The speed table's counts for every video and UTC day the given cells touch."""
    from storage.minute_counts import speed_counts_for

    videos = {video for video, _ in cells}
    days = {dt.datetime.fromtimestamp(minute_ms / 1000, dt.timezone.utc).date() for _, minute_ms in cells}
    actual = {}
    for day in days:
        actual.update(speed_counts_for(settings, videos, day))
    return actual


def expected_speed_counts(messages, batches) -> tuple[dict, Counter]:
    """The oracle's counts without the events the log proves late, and those late events."""
    counter, late_cells = oracle.ViewCounter(), Counter()
    for message in messages:
        reason, event = oracle.classify(message.value(), message.timestamp()[1])
        if event is None:
            counter.add(message.value(), message.timestamp()[1])  # tallies the invalid reason
            continue
        if dropped_as_late(message, event.event_time_us // 1000, batches):
            late_cells[(event.video_id, event.event_time_us // 60_000_000 * 60_000)] += 1
            continue
        counter.add(message.value(), message.timestamp()[1])
    return counter.views(), late_cells


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def assert_archive_matches_topic(settings, spark, path: str) -> None:
    """Every Kafka record is archived once, bytes and coordinates unchanged, and the
    completeness rows add up to the topic's offsets."""
    from pyspark.sql import functions as F

    messages = {(m.partition(), m.offset()): m for m in consume(settings, settings.views_topic)}
    # SHA-256 digests, not the bytes, come back to the driver: a megabyte value is compared
    # as exactly, and a topic full of them does not have to fit in the test's Spark driver.
    rows = spark.read.parquet(path).select(
        "partition", "offset", F.sha2("key", 256).alias("key"), F.sha2("value", 256).alias("value"),
        "arrival_date", "arrival_hour").collect()
    assert len(rows) == len(messages)
    assert {(row.partition, row.offset) for row in rows} == set(messages)
    for row in rows:
        message = messages[(row.partition, row.offset)]
        assert (row.key, row.value) == (_sha256(message.key()), _sha256(message.value()))
        arrival = dt.datetime.fromtimestamp(message.timestamp()[1] / 1000, dt.timezone.utc)
        assert (row.arrival_date, row.arrival_hour) == (arrival.date(), arrival.hour)

    assert_completeness_matches_topic(settings, {row.arrival_date for row in rows})


def assert_completeness_matches_topic(settings, arrival_dates) -> None:
    """The archiver's per-hour completeness rows of those days cover each partition from
    offset 0 to its end with no record more or less, and its committed offsets are the ends."""
    from storage.archive import offsets_by_partition, read_committed_offsets, read_hours
    from storage.cassandra import connect
    from storage.topics import topic_end_offsets

    ends = topic_end_offsets(settings, settings.views_topic)
    session = connect(settings)
    try:
        spans = offsets_by_partition(read_hours(session, settings.views_topic, set(arrival_dates)))
        committed = read_committed_offsets(session, settings.views_topic)
    finally:
        session.cluster.shutdown()
    assert spans == {partition: (0, end - 1, end) for partition, end in ends.items() if end}
    assert committed == ends
