"""Request checking: RFC 3339 times, days, video ids, and the minutes a range counts."""

from __future__ import annotations

import datetime as dt

import pytest

from serving.ranges import (
    BadRequest,
    DayWindow,
    check_video_id,
    format_time,
    minute_range,
    parse_day,
    parse_time,
)

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T13:45:00Z", "2026-11-25T13:45:00"),
    ("2026-11-25t13:45:00z", "2026-11-25T13:45:00"),
    ("2026-11-25 13:45:00Z", "2026-11-25T13:45:00"),
    ("2026-11-25T15:45:00+02:00", "2026-11-25T13:45:00"),
    ("2026-11-25T15:45:00 02:00", "2026-11-25T13:45:00"),  # '+' decoded as a space
    ("2026-11-25T08:15:00-05:30", "2026-11-25T13:45:00"),
    ("2026-11-25T00:30:00+01:00", "2026-11-24T23:30:00"),
    ("2026-11-25T13:45:12.5Z", "2026-11-25T13:45:12.500000"),
    ("2026-11-25T13:45:00.0000001Z", "2026-11-25T13:45:00.000001"),  # rounds up, never down
    ("2026-11-25T13:45:00.0000000Z", "2026-11-25T13:45:00"),
])
def test_parse_time_accepts_rfc3339_with_any_offset(text, expected):
    assert parse_time("start", text) == at(expected)


@pytest.mark.parametrize("text", [
    "", "2026-11-25", "2026-11-25T13:45Z", "2026-11-25T13:45:00", "1764078300000",
    "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T24:00:00Z",
    "2026-11-25T13:45:60Z", "2026-11-25T13:45:00+25:00", "0000-01-01T00:00:00Z",
    "2026-11-25T13:45:00Zjunk", "２０２６-11-25T13:45:00Z", "2026-11-25T13:45:00.Z",
])
def test_parse_time_rejects_what_is_not_rfc3339(text):
    with pytest.raises(BadRequest, match="start"):
        parse_time("start", text)


def test_a_range_counts_the_minutes_that_start_inside_it():
    counted = minute_range("2026-11-25T12:00:30Z", "2026-11-25T13:00:30Z", 31)
    assert (counted.start, counted.end) == (at("2026-11-25T12:01:00"), at("2026-11-25T13:01:00"))
    aligned = minute_range("2026-11-25T12:00:00Z", "2026-11-25T13:00:00Z", 31)
    assert (aligned.start, aligned.end) == (at("2026-11-25T12:00:00"), at("2026-11-25T13:00:00"))


@pytest.mark.parametrize("start, end, message", [
    ("2026-11-25T12:00:00Z", "2026-11-25T12:00:00Z", "end must be after start"),
    ("2026-11-25T12:00:00Z", "2026-11-25T11:00:00Z", "end must be after start"),
    ("2026-11-25T12:00:10Z", "2026-11-25T12:00:50Z", "no minute start"),
    ("2026-11-01T00:00:00Z", "2026-12-02T00:00:01Z", "maximum of 31 days"),
    ("9999-12-31T00:00:00Z", "9999-12-31T00:01:00Z", "before the year 9999"),
    ("nope", "2026-11-25T11:00:00Z", "start must be an RFC 3339 time"),
    ("2026-11-25T11:00:00Z", "nope", "end must be an RFC 3339 time"),
])
def test_bad_ranges_are_refused(start, end, message):
    with pytest.raises(BadRequest, match=message):
        minute_range(start, end, 31)


def test_the_longest_range_allowed_is_the_maximum():
    counted = minute_range("2026-11-01T00:00:00Z", "2026-12-02T00:00:00Z", 31)
    assert len(counted.days()) == 31


def test_days_split_a_range_at_utc_midnight():
    days = minute_range("2026-11-24T23:00:00-01:00", "2026-11-27T00:30:00+00:00", 31).days()
    assert days == [
        DayWindow(dt.date(2026, 11, 25), at("2026-11-25T00:00:00"), at("2026-11-26T00:00:00")),
        DayWindow(dt.date(2026, 11, 26), at("2026-11-26T00:00:00"), at("2026-11-27T00:00:00")),
        DayWindow(dt.date(2026, 11, 27), at("2026-11-27T00:00:00"), at("2026-11-27T00:30:00")),
    ]
    assert [day.whole_day for day in days] == [True, True, False]


def test_a_range_inside_one_day_is_one_window():
    (day,) = minute_range("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z", 31).days()
    assert (day.day, day.first_minute, day.end_minute) == (
        dt.date(2026, 11, 25), at("2026-11-25T10:00:00"), at("2026-11-25T11:00:00"))
    assert not day.whole_day


@pytest.mark.parametrize("video_id", ["a", "A-z_0", "x" * 64])
def test_good_video_ids(video_id):
    assert check_video_id(video_id) == video_id


@pytest.mark.parametrize("video_id", ["", "x" * 65, "a.b", "a b", "é", "a/b", "a\n"])
def test_bad_video_ids(video_id):
    with pytest.raises(BadRequest, match="video_id"):
        check_video_id(video_id)


def test_parse_day():
    assert parse_day("2026-11-25") == dt.date(2026, 11, 25)
    for text in ("2026-11-31", "2026-1-5", "20261125", "2026-11-25T00:00:00Z", "today"):
        with pytest.raises(BadRequest, match="day"):
            parse_day(text)


def test_times_are_answered_in_utc_with_z():
    assert format_time(at("2026-11-25T13:45:00")) == "2026-11-25T13:45:00Z"
    assert format_time(parse_time("t", "2026-11-25T15:45:00+02:00")) == "2026-11-25T13:45:00Z"


@pytest.mark.parametrize("refuse", [lambda text: parse_time("start", text), parse_day])
def test_an_error_quotes_at_most_40_characters_of_a_huge_input(refuse):
    with pytest.raises(BadRequest) as refused:
        refuse("9" * 60_000)
    message = str(refused.value)
    assert len(message) < 200 and "'" + "9" * 40 + "'... (60000 characters)" in message


def test_a_partitions_window_views_and_minutes_come_from_its_running_totals():
    import datetime as dt

    from serving.ranges import DayWindow
    from serving.store import DayMinutes, DayRows

    midnight = dt.datetime(2026, 11, 25)
    rows = DayRows.of([(midnight + dt.timedelta(minutes=m), views) for m, views in
                       ((0, 5), (59, 7), (60, 11), (61, 13), (1439, 17))])
    utc = midnight.replace(tzinfo=dt.timezone.utc)

    def window(first: int, end: int) -> DayMinutes:
        return DayMinutes(DayWindow(utc.date(), utc + dt.timedelta(minutes=first),
                                    utc + dt.timedelta(minutes=end)), None, rows)

    assert window(0, 1440).views == 53
    assert window(59, 61).views == 18  # minutes 59 and 60; 61 starts at the end
    assert [m.minute for m, _ in window(59, 61).minutes] == [59, 0]
    assert window(62, 1439).views == 0 and window(62, 1439).minutes == ()
    assert window(1439, 1440).views == 17
    assert all(m.tzinfo is dt.timezone.utc for m, _ in window(0, 1440).minutes)
    assert DayRows.of([]).running == (0,)
