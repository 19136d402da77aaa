"""Which records and events count for day D (counting/day.py), at the bounds."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from counting.day import arrived_before_window, arrived_in_window, arrived_past_cutoff, countable_for_day, falls_in_day
from counting.window import BatchWindow

D = dt.date(2026, 11, 25)
UTC = dt.timezone.utc
WINDOW = BatchWindow(D, dt.timedelta(minutes=30))


def at(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0, day: dt.date = D) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, microsecond, tzinfo=UTC)


NEXT = D + dt.timedelta(days=1)
BEFORE = D - dt.timedelta(days=1)


def _where(spark, instants: list[dt.datetime], condition) -> list[dt.datetime]:
    frame = spark.createDataFrame([(instant,) for instant in instants], "t timestamp")
    return sorted(row.t.replace(tzinfo=UTC) for row in frame.filter(condition(F.col("t"))).collect())


def test_arrivals_count_from_the_window_start_up_to_but_not_at_the_cutoff(spark):
    start = WINDOW.start  # five minutes before D: an event may be up to that far ahead of its arrival
    cutoff = at(0, 30, day=NEXT)
    instants = [start - dt.timedelta(microseconds=1), start, at(12), cutoff - dt.timedelta(microseconds=1), cutoff]
    assert start == at(23, 55, day=BEFORE)
    assert _where(spark, instants, lambda t: arrived_in_window(WINDOW, t)) == instants[1:4]
    assert _where(spark, instants, lambda t: arrived_before_window(WINDOW, t)) == instants[:1]
    assert _where(spark, instants, lambda t: arrived_past_cutoff(WINDOW, t)) == instants[4:]


def test_events_fall_in_day_from_midnight_to_midnight(spark):
    instants = [at(23, 59, 59, 999_999, day=BEFORE), at(0), at(23, 59, 59, 999_999), at(0, day=NEXT)]
    assert _where(spark, instants, lambda t: falls_in_day(WINDOW, t)) == instants[1:3]


def test_countable_events_are_valid_and_of_the_day(spark):
    events = spark.createDataFrame([
        ("v1", "e1", at(0), None),  # counts
        ("v1", "e2", at(23, 59), None),  # counts
        ("v1", "e3", at(0, day=NEXT), None),  # the next day
        ("v1", "e4", at(12), "missing_field"),  # invalid
        ("v1", "e5", at(23, 59, day=BEFORE), None),  # the day before
    ], "video_id string, event_id string, event_time timestamp, reason string")
    counted = events.transform(countable_for_day(WINDOW))
    assert sorted(row.event_id for row in counted.collect()) == ["e1", "e2"]
