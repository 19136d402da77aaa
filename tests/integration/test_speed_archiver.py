"""The archiver against the real Kafka, MinIO and Cassandra: every record, exactly once."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from pyspark.sql import functions as F

from tests.support.speed import consume, isolated, viewcount

pytestmark = pytest.mark.integration


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def assert_archive_matches_topic(settings, spark, path: str) -> None:
    """Every Kafka record is archived once, bytes and coordinates unchanged, and the
    completeness rows add up to the topic's offsets."""
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


def test_archive_holds_every_record_exactly_once_with_completeness(stack, spark, tmp_path):
    with isolated(stack, "test-archive") as (settings, env):
        viewcount(env, "produce", "--events", "20000", "--seed", "9", "--day", "2026-11-21",
                  "--malformed", "0.05", "--oracle", str(tmp_path / "oracle"))
        path = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}"
        viewcount(env, "archive", "--available-now", "--max-offsets-per-trigger", "5000",
                  "--metrics-port", "0", "--path", path, "--checkpoint", str(tmp_path / "checkpoint"))
        assert_archive_matches_topic(settings, spark, path)
        assert_one_file_per_hour_and_core(settings, path)


def assert_one_file_per_hour_and_core(settings, path: str) -> None:
    """A batch spanning several arrival hours writes at most a file per hour and core of
    its Spark master, not one per hour and Kafka partition (six here)."""
    import re
    from collections import Counter

    from storage.s3 import client, split_uri

    cores = re.fullmatch(r"local\[(\d+)\]", settings.spark.spark_master)
    if not cores:
        pytest.skip(f"writer tasks of master {settings.spark.spark_master} not known here")
    bucket, prefix = split_uri(path)
    files = Counter()
    for page in client(settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet"):
                files[item["Key"].rsplit("/", 1)[0]] += 1
    assert len(files) > 4  # several batches, each over several arrival hours
    assert max(files.values()) <= int(cores.group(1)) < 6
