"""Field rules (event_id, video_id, user_id, presence of event_time, future) and valid output."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from counting.events import EVENT_COLUMNS, invalid_events, parse_events, valid_events
from tests.support.counting import KAFKA_TIME, assert_reasons, kafka_records, view

EVENT_SCHEMA = (
    "topic string, partition int, offset long, kafka_timestamp timestamp, key binary, value binary, "
    "event_id string, video_id string, event_time timestamp, user_id string, reason string"
)


def test_missing_event_id(spark):
    assert_reasons(
        spark,
        [
            (view(event_id=None), "missing_event_id"),
            (b'{"event_id":null,"video_id":"v1","event_time":0}', "missing_event_id"),
            (b'{"Event_Id":"e1","video_id":"v1","event_time":0}', "missing_event_id"),
        ],
    )


def test_bad_event_id_counts_characters_not_bytes(spark):
    assert_reasons(
        spark,
        [
            (view(event_id=""), "bad_event_id"),
            (view(event_id="e" * 64), None),
            (view(event_id="e" * 65), "bad_event_id"),
            (view(event_id="😀" * 64), None),  # 256 bytes, 64 characters
            (view(event_id="é" * 65), "bad_event_id"),
            (view(event_id=17), "bad_event_id"),
            (view(event_id=True), "bad_event_id"),
            (view(event_id=["e1"]), "bad_event_id"),
            (view(event_id={"id": "e1"}), "bad_event_id"),
            (b'{"event_id":"\\ud83d\\ude00","video_id":"v1","event_time":0}', None),
        ],
    )


def test_missing_video_id(spark):
    assert_reasons(
        spark,
        [
            (view(video_id=None), "missing_video_id"),
            (b'{"event_id":"e1","video_id":null,"event_time":0}', "missing_video_id"),
        ],
    )


def test_bad_video_id(spark):
    assert_reasons(
        spark,
        [
            (view(video_id="Ab-_09"), None),
            (view(video_id="v" * 64), None),
            (view(video_id="v" * 65), "bad_video_id"),
            (view(video_id=""), "bad_video_id"),
            (view(video_id="v 1"), "bad_video_id"),
            (view(video_id="v1\n"), "bad_video_id"),
            (view(video_id="v1\r\n"), "bad_video_id"),
            (view(video_id="vidé"), "bad_video_id"),
            (view(video_id="v/1"), "bad_video_id"),
            (view(video_id=12), "bad_video_id"),
        ],
    )


def test_missing_event_time(spark):
    assert_reasons(
        spark,
        [
            (view(event_time=None), "missing_event_time"),
            (b'{"event_id":"e1","video_id":"v1","event_time":null}', "missing_event_time"),
        ],
    )


def test_bad_user_id(spark):
    assert_reasons(
        spark,
        [
            (view(user_id="u1"), None),
            (view(user_id=""), None),
            (b'{"event_id":"e1","video_id":"v1","event_time":0,"user_id":null}', None),
            (view(user_id=42), "bad_user_id"),
            (view(user_id=False), "bad_user_id"),
            (view(user_id={"id": "u1"}), "bad_user_id"),
            (view(user_id=["u1"]), "bad_user_id"),
        ],
    )


def test_future_event_time_allows_exactly_five_minutes(spark):
    assert_reasons(
        spark,
        [
            (view(event_time="2026-11-25T13:50:00Z"), None),
            (view(event_time="2026-11-25T13:50:00.001Z"), "future_event_time"),
            (view(event_time="2026-11-25T13:50:00.000001Z"), "future_event_time"),
            (view(event_time=1795614600000), None),  # 13:50:00.000Z
            (view(event_time=1795614600001), "future_event_time"),
            (view(event_time="2026-11-25T14:50:00+01:00"), None),
            (view(event_time="2026-11-25T14:50:01+01:00"), "future_event_time"),
            (view(event_time="1970-01-01T00:00:00Z"), None),
        ],
        timestamp=KAFKA_TIME,
    )


def test_future_limit_is_a_parameter(spark):
    assert_reasons(
        spark,
        [
            (view(event_time="2026-11-25T13:45:00Z"), None),
            (view(event_time="2026-11-25T13:45:00.001Z"), "future_event_time"),
        ],
        max_future_seconds=0,
    )


def test_valid_events_keep_kafka_coordinates_and_parsed_fields(spark):
    rfc3339 = view("e1", "v1", "2026-11-25T14:40:12.345678+01:00", user_id="u1", extra=[1])
    epoch_millis = view("e2", "v2", 1795614312345)
    records = kafka_records(spark, [rfc3339, epoch_millis], first_offset=41)

    events = records.transform(parse_events())

    first_time = datetime(2026, 11, 25, 13, 40, 12, 345678, timezone.utc)
    second_time = datetime(2026, 11, 25, 13, 45, 12, 345000, timezone.utc)
    expected = spark.createDataFrame(
        [
            ("views", 0, 41, KAFKA_TIME, b"k", rfc3339, "e1", "v1", first_time, "u1", None),
            ("views", 0, 42, KAFKA_TIME, b"k", epoch_millis, "e2", "v2", second_time, None, None),
        ],
        EVENT_SCHEMA,
    )
    assertDataFrameEqual(events, expected)
    assert tuple(events.columns) == EVENT_COLUMNS
    assert events.schema == expected.schema


def test_valid_and_invalid_split_every_record_once(spark):
    records = kafka_records(spark, [view(event_id="e1"), b"nope", view(event_id="e2"), None])

    events = records.transform(parse_events())

    assertDataFrameEqual(events.transform(valid_events).select("offset", "event_id"), [(0, "e1"), (2, "e2")])
    invalid = spark.createDataFrame(
        [(1, b"nope", "bad_json"), (3, None, "bad_json")], "offset long, value binary, reason string"
    )
    assertDataFrameEqual(events.transform(invalid_events).select("offset", "value", "reason"), invalid)


def test_other_kafka_columns_are_ignored(spark):
    headers_type = "array<struct<key:string,value:binary>>"
    records = kafka_records(spark, [view()]).withColumns(
        {"timestampType": F.lit(0), "headers": F.lit(None).cast(headers_type)}
    )

    events = records.transform(parse_events())

    assert tuple(events.columns) == EVENT_COLUMNS
    assert events.first().reason is None
