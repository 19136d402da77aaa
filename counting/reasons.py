"""Why a record is not a countable view: reason codes and the limits behind them.

Plain Python on purpose: the DLQ writer, metrics, reports and a pure-Python test oracle
import these constants without importing pyspark. The Spark rules in
``counting.events`` are the single implementation; the constants here are their inputs.
"""

from __future__ import annotations

TOO_LARGE = "too_large"
INVALID_UTF8 = "invalid_utf8"
BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
MISSING_EVENT_ID = "missing_event_id"
BAD_EVENT_ID = "bad_event_id"
MISSING_VIDEO_ID = "missing_video_id"
BAD_VIDEO_ID = "bad_video_id"
MISSING_EVENT_TIME = "missing_event_time"
BAD_EVENT_TIME = "bad_event_time"
BAD_USER_ID = "bad_user_id"
FUTURE_EVENT_TIME = "future_event_time"

# Priority order: a record gets the first reason that applies.
REASONS: tuple[str, ...] = (
    TOO_LARGE,
    INVALID_UTF8,
    BAD_JSON,
    NOT_OBJECT,
    MISSING_EVENT_ID,
    BAD_EVENT_ID,
    MISSING_VIDEO_ID,
    BAD_VIDEO_ID,
    MISSING_EVENT_TIME,
    BAD_EVENT_TIME,
    BAD_USER_ID,
    FUTURE_EVENT_TIME,
)

# A value longer than this many bytes is too_large (64 KiB itself is fine).
MAX_VALUE_BYTES = 65_536

# event_id length in characters (Unicode code points, like Python's len()).
MIN_EVENT_ID_CHARS = 1
MAX_EVENT_ID_CHARS = 64

# Must match the WHOLE string: use re.fullmatch in Python. (With re.match or Java's
# find(), "$" also matches before a trailing newline, so "abc\n" would slip through.)
VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

# RFC 3339 date-time, whole string (re.fullmatch). Groups: 1 year, 2 month, 3 day,
# 4 hour, 5 minute, 6 second, 7 fraction digits (may be absent), 8 offset sign,
# 9 offset hours, 10 offset minutes (8-10 absent for Z). The regex bounds hour, minute
# and second (so hour 24 and leap second 60 are bad); whether the date exists (Feb 30,
# Feb 29 in a non-leap year) is checked by the calendar, not the regex. Year 0000 is bad.
# [0-9], not \d: Python's \d also matches non-ASCII digits.
RFC3339_PATTERN = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]"
    r"([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))$"
)

# Fraction digits beyond microseconds are truncated, not rounded.
FRACTION_DIGITS_KEPT = 6

# Every event_time, integer or string, must be an instant in years 0001..9999 UTC:
# 0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z as epoch milliseconds.
MIN_EPOCH_MILLIS = -62_135_596_800_000
MAX_EPOCH_MILLIS = 253_402_300_799_999
# The same bounds in microseconds (string times keep microseconds).
MIN_EPOCH_MICROS = MIN_EPOCH_MILLIS * 1_000
MAX_EPOCH_MICROS = MAX_EPOCH_MILLIS * 1_000 + 999

# An event_time more than this far after its Kafka record timestamp is future_event_time;
# exactly this far is still valid.
MAX_FUTURE_SECONDS = 300
