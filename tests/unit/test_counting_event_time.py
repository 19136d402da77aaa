"""event_time: RFC 3339 strings, epoch milliseconds, range bounds, and UTC minute buckets.

Instants are compared as UTC text rendered by Spark (the test session's time zone is
UTC): Python's datetime cannot take 0001-01-01T00:00:00Z back from Spark.
"""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from counting import reasons as R
from counting.event_time import event_minute, event_time_from_epoch_millis, event_time_from_rfc3339
from tests.support.counting import assert_reasons, view

UTC_TEXT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"


def _as_utc_text(timestamp):
    return F.date_format(timestamp, UTC_TEXT)


def test_rfc3339_offsets_fractions_separators_and_case(spark):
    cases = [
        ("2026-11-25T13:45:12Z", "2026-11-25T13:45:12.000000Z"),
        ("2026-11-25T13:45:12.345Z", "2026-11-25T13:45:12.345000Z"),
        ("2026-11-25t13:45:12.345z", "2026-11-25T13:45:12.345000Z"),
        ("2026-11-25 13:45:12.5Z", "2026-11-25T13:45:12.500000Z"),
        ("2026-11-25T13:45:12.123456789Z", "2026-11-25T13:45:12.123456Z"),  # truncated, not rounded
        ("2026-11-25T13:45:12.999999999Z", "2026-11-25T13:45:12.999999Z"),
        ("2026-11-25T19:15:12+05:30", "2026-11-25T13:45:12.000000Z"),
        ("2026-11-25T03:45:12-10:00", "2026-11-25T13:45:12.000000Z"),
        ("2026-11-25T13:45:12+00:00", "2026-11-25T13:45:12.000000Z"),
        ("2026-11-25T13:45:12-00:00", "2026-11-25T13:45:12.000000Z"),
        ("2026-11-26T13:44:12+23:59", "2026-11-25T13:45:12.000000Z"),  # beyond Java's +-18:00
        ("2027-01-01T00:30:00+01:00", "2026-12-31T23:30:00.000000Z"),
        ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000000Z"),
        ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00.000000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
        ("0001-01-01T00:59:00+00:59", "0001-01-01T00:00:00.000000Z"),
        ("9999-12-31T23:00:00-00:59", "9999-12-31T23:59:00.000000Z"),
    ]
    texts = spark.createDataFrame([(text,) for text, _ in cases], "text string")

    parsed = texts.select("text", _as_utc_text(event_time_from_rfc3339(F.col("text"))).alias("utc"))

    assertDataFrameEqual(parsed, spark.createDataFrame(cases, "text string, utc string"))


def test_not_rfc3339_is_null(spark):
    bad = [
        "", "2026-11-25", "2026-11-25T13:45:12", "2026-11-25T13:45Z", "2026-11-25T13:45:12.Z",
        "2026-11-25T13:45:12+0530", "2026-11-25T13:45:12+05", "2026-11-25T13:45:12 Z",
        "2026-11-25T13:45:12Z ", " 2026-11-25T13:45:12Z", "2026-11-25T13:45:12Z\n", "2026-11-25X13:45:12Z",
        "2026-1-25T13:45:12Z", "26-11-25T13:45:12Z", "+2026-11-25T13:45:12Z", "２０２６-11-25T13:45:12Z",
        "2025-02-29T12:00:00Z", "1900-02-29T12:00:00Z", "2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-00-10T00:00:00Z", "2026-13-10T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-25T24:00:00Z",
        "2026-11-25T23:60:00Z", "2026-11-25T23:59:60Z", "2026-11-25T13:45:12+24:00",
        "2026-11-25T13:45:12+05:60",
        "0000-01-01T00:00:00Z", "0000-12-31T23:30:00-01:00", "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01", "1795614312345", "2026-11-25T13:45:12.345ZZ",
    ]  # fmt: skip
    texts = spark.createDataFrame([(text,) for text in bad], "text string")

    parsed = texts.select("text", event_time_from_rfc3339(F.col("text")).alias("event_time"))

    expected = spark.createDataFrame([(text, None) for text in bad], "text string, event_time timestamp")
    assertDataFrameEqual(parsed, expected)


def test_epoch_millis_within_years_1_to_9999(spark):
    cases = [
        (0, "1970-01-01T00:00:00.000000Z"),
        (-1, "1969-12-31T23:59:59.999000Z"),
        (1795614312345, "2026-11-25T13:45:12.345000Z"),
        (R.MIN_EPOCH_MILLIS, "0001-01-01T00:00:00.000000Z"),
        (R.MAX_EPOCH_MILLIS, "9999-12-31T23:59:59.999000Z"),
        (R.MIN_EPOCH_MILLIS - 1, None),
        (R.MAX_EPOCH_MILLIS + 1, None),
        (-(2**63), None),
        (2**63 - 1, None),
    ]
    millis = spark.createDataFrame([(value,) for value, _ in cases], "millis long")

    parsed = millis.select("millis", _as_utc_text(event_time_from_epoch_millis(F.col("millis"))).alias("utc"))

    assertDataFrameEqual(parsed, spark.createDataFrame(cases, "millis long, utc string"))


def test_bad_event_time(spark):
    assert_reasons(
        spark,
        [
            (view(event_time=1.5), "bad_event_time"),
            (view(event_time=1.0), "bad_event_time"),
            (b'{"event_id":"e1","video_id":"v1","event_time":1e3}', "bad_event_time"),
            (b'{"event_id":"e1","video_id":"v1","event_time":1795614312345.0}', "bad_event_time"),
            (view(event_time=True), "bad_event_time"),
            (view(event_time={"ms": 0}), "bad_event_time"),
            (view(event_time=[0]), "bad_event_time"),
            (view(event_time=""), "bad_event_time"),
            (view(event_time="1795614312345"), "bad_event_time"),
            (view(event_time="2025-02-29T00:00:00Z"), "bad_event_time"),
            (view(event_time="2024-02-29T00:00:00Z"), None),
            (view(event_time="2026-11-25T24:00:00Z"), "bad_event_time"),
            (view(event_time="2026-11-25T13:44:60Z"), "bad_event_time"),
            (view(event_time=R.MIN_EPOCH_MILLIS), None),
            (view(event_time=R.MIN_EPOCH_MILLIS - 1), "bad_event_time"),
            (view(event_time=R.MAX_EPOCH_MILLIS), "future_event_time"),  # parsed, then too far ahead
            (view(event_time=R.MAX_EPOCH_MILLIS + 1), "bad_event_time"),
            (view(event_time=2**63 - 1), "bad_event_time"),  # a JSON BIGINT that would overflow micros
            (view(event_time=-(2**63)), "bad_event_time"),
            (view(event_time=2**63), "bad_event_time"),  # no longer a BIGINT: DECIMAL
            (view(event_time=-(2**63) - 1), "bad_event_time"),
        ],
    )


def test_event_minute_floors_to_the_utc_minute(spark):
    cases = [
        ("2026-11-25T13:45:00.000000Z", "2026-11-25T13:45:00.000000Z"),
        ("2026-11-25T13:45:59.999999Z", "2026-11-25T13:45:00.000000Z"),
        ("2026-11-25T13:46:00.000000Z", "2026-11-25T13:46:00.000000Z"),
        ("1970-01-01T00:00:00.000000Z", "1970-01-01T00:00:00.000000Z"),
        ("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:00.000000Z"),
        ("1969-12-31T23:59:00.000000Z", "1969-12-31T23:59:00.000000Z"),
        ("0001-01-01T00:00:00.000000Z", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:00:59.999999Z", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:01:30.000000Z", "0001-01-01T00:01:00.000000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:00.000000Z"),
    ]
    times = spark.createDataFrame([(text,) for text, _ in cases], "text string")

    minute = event_minute(event_time_from_rfc3339(F.col("text")))
    minutes = times.select("text", _as_utc_text(minute).alias("minute"))

    assertDataFrameEqual(minutes, spark.createDataFrame(cases, "text string, minute string"))
