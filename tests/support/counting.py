"""Builders shared by the counting tests: Kafka source rows and view-event JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from counting.events import parse_events

KAFKA_SCHEMA = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"
KAFKA_TIME = datetime(2026, 11, 25, 13, 45, tzinfo=timezone.utc)


def view(event_id="e1", video_id="v1", event_time="2026-11-25T13:45:12.345Z", **extra) -> bytes:
    """A view event's value; pass a field as None to leave it out."""
    fields = {"event_id": event_id, "video_id": video_id, "event_time": event_time, **extra}
    return json.dumps({name: value for name, value in fields.items() if value is not None}).encode()


def kafka_records(
    spark: SparkSession, values, timestamp: datetime = KAFKA_TIME, first_offset: int = 0
) -> DataFrame:
    """Rows shaped like Spark's Kafka source, one per value, offsets counting up."""
    rows = [(b"k", value, "views", 0, first_offset + index, timestamp) for index, value in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def assert_reasons(spark: SparkSession, cases, timestamp: datetime = KAFKA_TIME, **parse_options) -> None:
    """Each (value, expected reason or None) pair gets exactly that reason."""
    values = [value for value, _ in cases]
    parsed = kafka_records(spark, values, timestamp).transform(parse_events(**parse_options))
    expected = spark.createDataFrame(
        [(offset, reason) for offset, (_, reason) in enumerate(cases)], "offset long, reason string"
    )
    assertDataFrameEqual(parsed.select("offset", "reason"), expected)
