"""The counting rules again, in plain Python: the oracle the Spark code is tested against.

Written independently of ``counting/``: only its reason codes and numeric limits are
shared; the patterns, the calendar and the JSON parsing (the standard library's ``json``,
made strict) are this file's own, so that a test can say "Spark and this file agree on
every record" and mean two implementations agree. No pyspark here, ever.

``classify(value, kafka_timestamp_ms)`` returns ``(reason, None)`` for an invalid record and
``(None, ViewEvent)`` for a valid one; ``ViewCounter`` turns records into
views(video, minute) = distinct event_id per (video_id, UTC minute).
"""

from __future__ import annotations

import json
import sys
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from counting.reasons import (
    BAD_EVENT_ID,
    BAD_EVENT_TIME,
    BAD_JSON,
    BAD_USER_ID,
    BAD_VIDEO_ID,
    FUTURE_EVENT_TIME,
    INVALID_UTF8,
    MAX_EPOCH_MICROS,
    MAX_EPOCH_MILLIS,
    MAX_EVENT_ID_CHARS,
    MAX_FUTURE_SECONDS,
    MAX_VALUE_BYTES,
    MIN_EPOCH_MICROS,
    MIN_EPOCH_MILLIS,
    MIN_EVENT_ID_CHARS,
    MISSING_EVENT_ID,
    MISSING_EVENT_TIME,
    MISSING_VIDEO_ID,
    NOT_OBJECT,
    TOO_LARGE,
)

MS_PER_MINUTE = 60_000

_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Explicit [0-9]: Python's \d would also accept other scripts' digits.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class ViewEvent:
    event_id: str
    video_id: str
    event_time_us: int
    user_id: str | None

    @property
    def event_time_ms(self) -> int:
        return self.event_time_us // 1000

    @property
    def minute_ms(self) -> int:
        """Epoch ms of the UTC minute the event falls in (floor, also before 1970)."""
        return self.event_time_ms // MS_PER_MINUTE * MS_PER_MINUTE


class _NotJson(ValueError):
    pass


class _HugeNumber:
    """An integer literal too long for int(): valid JSON, never a valid field value."""


def _reject_constant(name: str):
    raise _NotJson(f"{name} is not JSON")


def _object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _NotJson("duplicate key")
    return obj


def _parse_int(text: str) -> int | _HugeNumber:
    return int(text) if len(text) <= 40 else _HugeNumber()


# Spark's JSON parser allows 1,000 levels and counting parses the value wrapped in one more.
MAX_JSON_NESTING = 999


def _nesting_depth(text: str) -> int:
    if text.count("[") + text.count("{") <= MAX_JSON_NESTING:
        return 0  # cannot be deeper than the limit: skip the scan
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (not escaped and char == "\\"), in_string and (escaped or char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _has_lone_surrogate(parsed: object) -> bool:
    """A \\ud800-style escape without its pair is not a Unicode character."""
    try:
        json.dumps(parsed, ensure_ascii=False, default=repr).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_strict_json(text: str) -> object:
    """RFC 8259 JSON: no NaN/Infinity, no duplicate keys (at any depth), no raw control
    chars, no lone surrogate escapes, at most MAX_JSON_NESTING levels deep."""
    if _nesting_depth(text) > MAX_JSON_NESTING:
        raise _NotJson("nested too deeply")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, MAX_JSON_NESTING * 3))  # Python's parser recurses per level
    try:
        parsed = json.loads(
            text,
            strict=True,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicate_keys,
            parse_int=_parse_int,
        )
        if _has_lone_surrogate(parsed):  # re-encodes: needs the raised limit too
            raise _NotJson("lone surrogate escape")
    finally:
        sys.setrecursionlimit(limit)
    return parsed


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def parse_rfc3339_us(text: str) -> int | None:
    """Epoch microseconds of an RFC 3339 date-time, or None when it is not one.

    Fractions beyond microseconds are truncated; hour 24, second 60 and impossible dates
    are rejected, and so is an instant outside years 0001..9999 UTC.
    """
    match = _RFC3339.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    if not (1 <= year and 1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    days_in_month = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= days_in_month:
        return None
    offset_seconds = 0
    if offset not in ("Z", "z"):
        offset_hours, offset_minutes = int(offset[1:3]), int(offset[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset_seconds = (offset_hours * 3600 + offset_minutes * 60) * (-1 if offset[0] == "-" else 1)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    micros = int((fraction or "")[:6].ljust(6, "0"))
    epoch_us = (seconds - offset_seconds) * 1_000_000 + micros
    if not MIN_EPOCH_MICROS <= epoch_us <= MAX_EPOCH_MICROS:
        return None
    return epoch_us


def event_time_us(value: object) -> int | None:
    """An ``event_time`` field as epoch microseconds, or None when it is not a valid one."""
    if type(value) is int:  # bool is an int subclass, and is not a time
        return value * 1000 if MIN_EPOCH_MILLIS <= value <= MAX_EPOCH_MILLIS else None
    if isinstance(value, str):
        return parse_rfc3339_us(value)
    return None


def _decode(value: bytes | None) -> tuple[str | None, object]:
    """(reason, parsed JSON) for the byte-level checks, in priority order."""
    if value is not None and len(value) > MAX_VALUE_BYTES:
        return TOO_LARGE, None
    if not value:
        return BAD_JSON, None
    try:
        text = bytes(value).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return INVALID_UTF8, None
    try:
        return None, parse_strict_json(text)
    except (ValueError, RecursionError):
        return BAD_JSON, None


def classify(value: bytes | None, kafka_timestamp_ms: int) -> tuple[str | None, ViewEvent | None]:
    """Apply the counting rules to one Kafka record: ``(reason, None)`` or ``(None, event)``."""
    reason, obj = _decode(value)
    if reason:
        return reason, None
    if not isinstance(obj, dict):
        return NOT_OBJECT, None
    event_id, video_id = obj.get("event_id"), obj.get("video_id")
    raw_time, user_id = obj.get("event_time"), obj.get("user_id")
    if event_id is None:
        return MISSING_EVENT_ID, None
    if not (isinstance(event_id, str) and MIN_EVENT_ID_CHARS <= len(event_id) <= MAX_EVENT_ID_CHARS):
        return BAD_EVENT_ID, None
    if video_id is None:
        return MISSING_VIDEO_ID, None
    if not (isinstance(video_id, str) and _VIDEO_ID.fullmatch(video_id)):
        return BAD_VIDEO_ID, None
    if raw_time is None:
        return MISSING_EVENT_TIME, None
    time_us = event_time_us(raw_time)
    if time_us is None:
        return BAD_EVENT_TIME, None
    if user_id is not None and not isinstance(user_id, str):
        return BAD_USER_ID, None
    is_future = time_us > (kafka_timestamp_ms + MAX_FUTURE_SECONDS * 1000) * 1000
    if is_future:
        return FUTURE_EVENT_TIME, None
    return None, ViewEvent(event_id, video_id, time_us, user_id)


class ViewCounter:
    """views(video, minute) over a stream of records, plus invalid records per reason.

    Keeps every distinct (video, minute, event_id): fine for tests, not for billions.
    """

    def __init__(self) -> None:
        self._events: dict[tuple[str, int], set[str]] = {}
        self.invalid: Counter[str] = Counter()
        self.valid_records = 0

    def add(self, value: bytes | None, kafka_timestamp_ms: int) -> None:
        reason, event = classify(value, kafka_timestamp_ms)
        if reason:
            self.invalid[reason] += 1
            return
        self.valid_records += 1
        self._events.setdefault((event.video_id, event.minute_ms), set()).add(event.event_id)

    def add_all(self, records: Iterable[tuple[bytes | None, int]]) -> "ViewCounter":
        for value, kafka_timestamp_ms in records:
            self.add(value, kafka_timestamp_ms)
        return self

    def views(self) -> dict[tuple[str, int], int]:
        """{(video_id, minute epoch ms): distinct event_id count}."""
        return {cell: len(event_ids) for cell, event_ids in self._events.items()}


def views(records: Iterable[tuple[bytes | None, int]]) -> dict[tuple[str, int], int]:
    """views(video, minute) of ``(value, kafka_timestamp_ms)`` records."""
    return ViewCounter().add_all(records).views()


MS_PER_DAY = 86_400_000


def day_views(records: Iterable[tuple[bytes | None, int]], day_start_ms: int,
              cutoff_ms: int) -> dict[tuple[str, int], int]:
    """The batch of one UTC day: views(video, minute) for the minutes of the day starting
    at ``day_start_ms``, from the records that arrived (Kafka timestamp) before ``cutoff_ms``."""
    counted = views((value, timestamp_ms) for value, timestamp_ms in records if timestamp_ms < cutoff_ms)
    return {cell: n for cell, n in counted.items() if day_start_ms <= cell[1] < day_start_ms + MS_PER_DAY}


def read_counts(path: str | Path) -> dict[tuple[str, int], int]:
    """A ``counts.parquet`` written by ``viewcount produce``, as ``views()`` returns counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(Path(path))
    minutes_ms = table["minute"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    return {
        (video_id, minute_ms): views
        for video_id, minute_ms, views in zip(
            table["video_id"].to_pylist(), minutes_ms.to_pylist(), table["views"].to_pylist()
        )
    }
