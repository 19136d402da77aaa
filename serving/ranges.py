"""What a request asks for, checked: video ids, RFC 3339 times, days, and the minutes and
UTC days a range covers. Pure functions; every bad input raises ``BadRequest``.

A range ``[start, end)`` counts the minutes whose *start* lies in it (the rule of rollup
stores such as Druid): ``12:00:30..13:00:30`` counts minutes 12:01 to 13:00. The answer
echoes the range actually counted, ``[ceil_minute(start), ceil_minute(end))``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

UTC = dt.timezone.utc
MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)
VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Explicit [0-9] (Python's \d accepts other scripts' digits). A space where the offset's
# sign belongs is a '+' that was not percent-encoded in the query string.
RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,32}))?([Zz]|[+\- ][0-9]{2}:[0-9]{2})"
)
LAST_YEAR = 9999  # so that the day after any day in a range is a valid date
DAY_FORMAT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
SHOWN_CHARACTERS = 40  # of a bad input quoted in its error: an abuser's 60 KB is not echoed


class BadRequest(ValueError):
    """Input the client must fix: answered 400 with ``{"error": message}``."""


@dataclass(frozen=True)
class DayWindow:
    """The minutes ``[first_minute, end_minute)`` of one UTC day that a range covers."""

    day: dt.date
    first_minute: dt.datetime
    end_minute: dt.datetime

    @property
    def whole_day(self) -> bool:
        return self.end_minute - self.first_minute == DAY


@dataclass(frozen=True)
class MinuteRange:
    start: dt.datetime  # UTC, whole minute, first minute counted
    end: dt.datetime  # UTC, whole minute, first minute not counted

    def days(self) -> list[DayWindow]:
        windows = []
        day_start = self.start.replace(hour=0, minute=0)
        while day_start < self.end:
            day_end = day_start + DAY
            windows.append(DayWindow(
                day_start.date(), max(self.start, day_start), min(self.end, day_end)
            ))
            day_start = day_end
        return windows


def shown(text: str) -> str:
    """``text`` quoted for an error message, cut to its first ``SHOWN_CHARACTERS``."""
    if len(text) <= SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:SHOWN_CHARACTERS]!r}... ({len(text)} characters)"


def check_video_id(video_id: str) -> str:
    if not VIDEO_ID.fullmatch(video_id):
        raise BadRequest("video_id must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return video_id


def parse_time(name: str, text: str) -> dt.datetime:
    """An RFC 3339 timestamp with any offset, as an aware UTC datetime.

    Digits past the microsecond round up: ``12:00:00.0000001`` lies after minute 12:00's
    start, so that minute must not count.
    """
    match = RFC3339.fullmatch(text)
    if not match:
        raise BadRequest(f"{name} must be an RFC 3339 time such as 2026-11-25T13:45:00Z, got {shown(text)}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    fraction = fraction or ""
    micros = int(fraction[:6].ljust(6, "0"))
    try:
        if offset in ("Z", "z"):
            zone = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            zone = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
        local = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                            micros, tzinfo=zone)
        value = local.astimezone(UTC)
        if fraction[6:].strip("0"):
            value += dt.timedelta(microseconds=1)
    except (ValueError, OverflowError):
        raise BadRequest(f"{name} is not a valid time: {shown(text)}") from None
    return value


def parse_day(text: str) -> dt.date:
    if not DAY_FORMAT.fullmatch(text):
        raise BadRequest(f"day must be YYYY-MM-DD, got {shown(text)}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"day {text!r} is not a calendar date") from None


def ceil_minute(value: dt.datetime) -> dt.datetime:
    floor = value.replace(second=0, microsecond=0)
    return floor if floor == value else floor + MINUTE


def minute_range(start_text: str, end_text: str, max_days: int) -> MinuteRange:
    start = parse_time("start", start_text)
    end = parse_time("end", end_text)
    if end <= start:
        raise BadRequest("end must be after start")
    if end - start > max_days * DAY:
        raise BadRequest(f"range is longer than the maximum of {max_days} days")
    if end.year >= LAST_YEAR:
        raise BadRequest(f"times must be before the year {LAST_YEAR}")
    counted = MinuteRange(ceil_minute(start), ceil_minute(end))
    if counted.start == counted.end:
        raise BadRequest("range contains no minute start: counts are per whole minute")
    return counted


def format_time(value: dt.datetime) -> str:
    """UTC, whole seconds unless there is a fraction, with ``Z``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
