"""views(video, minute) = distinct event_id among that video's valid events in that minute."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from counting.events import parse_events, valid_events
from counting.views import DEDUPE_KEY, count_per_minute, count_views_per_minute, drop_duplicate_events
from tests.support.counting import kafka_records, view

COUNT_SCHEMA = "video_id string, minute timestamp, views long"


def _minute(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 25, hour, minute, tzinfo=timezone.utc)


RECORDS = [
    view("e1", "v1", "2026-11-25T13:40:05Z"),
    view("e1", "v1", "2026-11-25T13:40:05Z"),  # producer retry: same bytes
    view("e1", "v1", "2026-11-25T13:40:59.999Z"),  # client retry, same minute: same view
    view("e1", "v1", "2026-11-25T13:41:00Z"),  # same event_id in the next minute counts there
    view("e2", "v1", 1795613999999),  # 13:39:59.999 as epoch millis
    view("e2", "v1", "2026-11-25T13:39:30Z"),
    view("e1", "v2", "2026-11-25T14:40:10+01:00"),  # same event_id, other video
    view("e3", "v2", "2026-11-25T13:40:20Z", user_id="u9"),
    view("e4", "v2", "2026-11-25T13:40:20Z", user_id=7),  # bad_user_id: never counted
    view("e5", "v2", "2026-11-25T13:59:00Z"),  # future_event_time: never counted
    b'{"event_id":"e6","video_id":"v2","event_time":"2026-11-25T13:40:20Z"} x',  # bad_json
]


def test_drop_duplicate_events_keeps_one_row_per_video_minute_and_event_id(spark):
    events = kafka_records(spark, RECORDS).transform(parse_events()).transform(valid_events)

    unique = events.transform(drop_duplicate_events)

    expected = spark.createDataFrame(
        [("v1", _minute(13, 40), "e1"), ("v1", _minute(13, 41), "e1"), ("v1", _minute(13, 39), "e2"),
         ("v2", _minute(13, 40), "e1"), ("v2", _minute(13, 40), "e3")],
        "video_id string, minute timestamp, event_id string",
    )  # fmt: skip
    assertDataFrameEqual(unique.select(*DEDUPE_KEY), expected)


def test_count_per_minute_counts_rows_per_video_and_minute(spark):
    events = spark.createDataFrame(
        [("v1", "e1", datetime(2026, 11, 25, 13, 40, 0, tzinfo=timezone.utc)),
         ("v1", "e2", datetime(2026, 11, 25, 13, 40, 59, 999999, tzinfo=timezone.utc)),
         ("v1", "e3", datetime(2026, 11, 25, 13, 41, 0, tzinfo=timezone.utc)),
         ("v2", "e4", datetime(2026, 11, 25, 13, 40, 30, tzinfo=timezone.utc))],
        "video_id string, event_id string, event_time timestamp",
    )  # fmt: skip

    counts = events.transform(count_per_minute)

    expected = spark.createDataFrame(
        [("v1", _minute(13, 40), 2), ("v1", _minute(13, 41), 1), ("v2", _minute(13, 40), 1)], COUNT_SCHEMA
    )
    assertDataFrameEqual(counts, expected)
    assert counts.dtypes == expected.dtypes


def test_count_views_per_minute_counts_each_valid_view_once(spark):
    counts = kafka_records(spark, RECORDS).transform(parse_events()).transform(count_views_per_minute())

    expected = spark.createDataFrame(
        [("v1", _minute(13, 39), 1), ("v1", _minute(13, 40), 1), ("v1", _minute(13, 41), 1),
         ("v2", _minute(13, 40), 2)],
        COUNT_SCHEMA,
    )  # fmt: skip
    assertDataFrameEqual(counts, expected)


def test_minutes_before_1970_and_in_year_1(spark):
    records = [
        view("e1", "v1", "0001-01-01T00:00:00Z"),
        view("e2", "v1", "0001-01-01T00:00:59.999999Z"),
        view("e3", "v1", "0001-01-01T00:01:00Z"),
        view("e4", "v1", -1),
        view("e5", "v1", -60_000),
        view("e6", "v1", -60_001),
    ]
    counts = kafka_records(spark, records).transform(parse_events()).transform(count_views_per_minute())

    minute_text = F.date_format("minute", "yyyy-MM-dd'T'HH:mm:ss'Z'")
    as_text = counts.select("video_id", minute_text.alias("minute"), "views")

    expected = spark.createDataFrame(
        [("v1", "0001-01-01T00:00:00Z", 2), ("v1", "0001-01-01T00:01:00Z", 1),
         ("v1", "1969-12-31T23:59:00Z", 2), ("v1", "1969-12-31T23:58:00Z", 1)],
        "video_id string, minute string, views long",
    )  # fmt: skip
    assertDataFrameEqual(as_text, expected)


def test_an_event_id_counted_in_two_minutes_is_listed_with_its_cells(spark):
    """v1/e1 was re-stamped from 13:40 into 13:41: counted once in each (the rule), and
    listed; e2's two times fall in one minute, and an invalid event never counts."""
    from counting.views import events_in_several_cells

    events = kafka_records(spark, RECORDS).transform(parse_events()).transform(valid_events)

    several = events.transform(events_in_several_cells)

    assertDataFrameEqual(several, spark.createDataFrame([("v1", "e1", 2)], "video_id string, event_id string, cells long"))
