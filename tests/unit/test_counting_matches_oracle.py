"""The Spark rules and the independent pure-Python oracle agree record by record."""

from __future__ import annotations

import datetime as dt

from counting.events import parse_events
from oracle import counts as oracle
from producer.arrivals import DayArrivals
from producer.generator import Mix, ViewGenerator

HOSTILE = [
    b'{"event_id": "e", "video_id": "v", "event_time": "2026-11-25T10:00:00Z", "x": "\\ud800"}',
    b'{"event_id": "e", "video_id": "v", "event_time": "2026-11-25T10:00:00Z", "x": "\\ud83d\\ude00"}',
    b"[" * 998 + b"]" * 998,
    b"[" * 999 + b"]" * 999,
    b"[" * 1000 + b"]" * 1000,
    b'{"event_id":' + b"[" * 998 + b"]" * 998 + b"}",
    b'{"event_id": "e", "video_id": "v", "event_time": 1e3}',
    b'{"event_id": "e", "video_id": "v", "event_time": 1.0}',
    b'{"event_id": "e", "video_id": "v", "event_time": 99999999999999999999999}',
    b'{"event_id": "e", "video_id": "v", "event_time": "0001-01-01T00:00:00Z"}',
    b'{"event_id": "e", "video_id": "v", "event_time": "9999-12-31T23:59:59.999999999+00:00"}',
    b'{"event_id": "e", "video_id": "v", "event_time": "2026-11-25T10:00:00Z"} trailing',
    b'{"event_id": "e", "video_id": "v\\n", "event_time": "2026-11-25T10:00:00Z"}',
    b"\xff\xfe{}",
    b"",
]


def test_spark_and_oracle_agree_on_generated_and_hostile_records(spark):
    day = dt.date(2026, 11, 20)
    mix = Mix(videos=200, zipf=1.1, duplicates=0.05, late=0.05, malformed=0.3)
    generated = ViewGenerator(mix, 11, DayArrivals(day, 3_000, 11)).chunk(3_000)
    timestamp_ms = generated[0].timestamp_ms
    records = [(r.key, r.value, r.timestamp_ms) for r in generated]
    records += [(b"k", value, timestamp_ms) for value in HOSTILE]

    rows = [(key, value, "views", 0, offset, ts) for offset, (key, value, ts) in enumerate(records)]
    frame = spark.createDataFrame(
        rows, "key binary, value binary, topic string, partition int, offset long, ts long"
    ).selectExpr("key", "value", "topic", "partition", "offset", "timestamp_millis(ts) AS timestamp")
    parsed = frame.transform(parse_events()).selectExpr(
        "offset", "reason", "floor(unix_micros(event_time) / 60000000) AS minute"
    ).collect()
    spark_says = {row.offset: (row.reason, None if row.reason else row.minute) for row in parsed}

    mismatches = []
    for offset, (_, value, ts) in enumerate(records):
        reason, event = oracle.classify(value, ts)
        expected = (reason, None if event is None else event.event_time_us // 60_000_000)
        if spark_says[offset] != expected:
            mismatches.append((value[:80], spark_says[offset], expected))
    assert not mismatches
    assert {reason for reason, _ in spark_says.values()} >= {None, "bad_json", "not_object"}
