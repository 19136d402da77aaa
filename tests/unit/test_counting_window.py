"""The batch window of day D: grace, cutoff, and which archive hours hold its arrivals."""

from __future__ import annotations

import datetime as dt

import pytest

from counting.durations import duration_text, parse_duration, parse_watermark_delay, spark_interval
from counting.window import BatchWindow, latest_closed_day, parse_day, parse_grace

D = dt.date(2026, 11, 25)
UTC = dt.timezone.utc


@pytest.mark.parametrize("text, minutes", [("1h", 60), ("90m", 90), ("1h30m", 90), ("0s", 0), ("24h", 1440),
                                           ("3600s", 60)])
def test_parse_grace_reads_hours_minutes_and_seconds(text, minutes):
    assert parse_grace(text) == dt.timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "-1h", "1.5h", "25h", "1h 30m", "90 minutes"])
def test_parse_grace_refuses_anything_else(text):
    with pytest.raises(ValueError):
        parse_grace(text)


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "26-11-25", "2026-11-25T00:00", "1969-12-31", ""])
def test_parse_day_refuses_what_is_not_a_day(text):
    with pytest.raises(ValueError, match="is not a date YYYY-MM-DD"):
        parse_day(text)


@pytest.mark.parametrize("minutes", [0, 1, 10, 60, 90, 1441])
def test_a_duration_reads_back_as_it_is_written(minutes):
    duration = dt.timedelta(minutes=minutes)
    assert parse_duration(duration_text(duration)) == duration


def test_a_watermark_delay_is_a_duration_of_at_least_a_minute_and_spark_reads_it_as_an_interval():
    assert parse_watermark_delay("10m") == dt.timedelta(minutes=10)
    assert spark_interval(parse_watermark_delay("10m")) == "10 minutes"
    assert spark_interval(parse_watermark_delay("90s")) == "90 seconds"
    for text in ("59s", "10 minutes", "10"):
        with pytest.raises(ValueError):
            parse_watermark_delay(text)


def test_the_latest_closed_day_is_the_newest_whose_cutoff_has_passed():
    assert latest_closed_day(dt.datetime(2026, 11, 26, 1, 0, tzinfo=UTC)) == D
    assert latest_closed_day(dt.datetime(2026, 11, 26, 0, 59, tzinfo=UTC)) == D - dt.timedelta(days=1)
    assert latest_closed_day(dt.datetime(2026, 11, 26, 0, 0, tzinfo=UTC), grace=dt.timedelta(0)) == D


def test_default_window_starts_five_minutes_before_the_day_and_ends_an_hour_after_it():
    window = BatchWindow(D)

    assert window.start == dt.datetime(2026, 11, 24, 23, 55, tzinfo=UTC)
    assert window.cutoff == dt.datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    assert window.hours() == ([(dt.date(2026, 11, 24), 23)] + [(D, hour) for hour in range(24)]
                              + [(dt.date(2026, 11, 26), 0)])
    assert window.dates() == [dt.date(2026, 11, 24), D, dt.date(2026, 11, 26)]


def test_a_grace_ending_inside_an_hour_reads_that_whole_hour():
    hours = BatchWindow(D, dt.timedelta(minutes=90)).hours()

    assert hours[-2:] == [(dt.date(2026, 11, 26), 0), (dt.date(2026, 11, 26), 1)]


def test_no_grace_reads_no_hour_of_the_next_day():
    assert BatchWindow(D, dt.timedelta(0)).hours()[-1] == (D, 23)


def test_a_day_is_over_at_its_cutoff():
    window = BatchWindow(D)

    assert not window.is_over(dt.datetime(2026, 11, 26, 0, 59, 59, tzinfo=UTC))
    assert window.is_over(dt.datetime(2026, 11, 26, 1, 0, tzinfo=UTC))
