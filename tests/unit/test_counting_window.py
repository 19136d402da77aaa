"""The batch window of day D: grace, cutoff, and which archive hours hold its arrivals."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest

from counting.window import BatchWindow, parse_day, parse_grace

D = dt.date(2026, 11, 25)
UTC = dt.timezone.utc


@pytest.mark.parametrize("text, minutes", [("1h", 60), ("90m", 90), ("1h30m", 90), ("0s", 0), ("24h", 1440),
                                           ("3600s", 60)])
def test_parse_grace_reads_hours_minutes_and_seconds(text, minutes):
    assert parse_grace(text) == dt.timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "-1h", "1.5h", "25h", "1h 30m", "90 minutes"])
def test_parse_grace_refuses_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_grace(text)


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "26-11-25", "2026-11-25T00:00", "1969-12-31", ""])
def test_parse_day_refuses_what_is_not_a_day(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_day(text)


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
