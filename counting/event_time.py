"""Event time: RFC 3339 strings and epoch milliseconds to timestamps, and minute buckets.

Every function here is Column -> Column and never throws under ANSI mode: a value that
is not a valid time becomes NULL, and conversions that could overflow are only reached
behind a range check.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from counting.reasons import (
    FRACTION_DIGITS_KEPT,
    MAX_EPOCH_MICROS,
    MAX_EPOCH_MILLIS,
    MIN_EPOCH_MICROS,
    MIN_EPOCH_MILLIS,
    RFC3339_PATTERN,
)

MICROS_PER_SECOND = 1_000_000
MICROS_PER_MINUTE = 60 * MICROS_PER_SECOND


def fully_matches(text: Column, pattern: str) -> Column:
    """True when the whole of ``text`` matches ``pattern`` (like Python's re.fullmatch).

    Spark's regexp_like uses Java's find(), where ``$`` also matches before a final line
    terminator; requiring the match to equal the text closes that gap. NULL for NULL text.
    """
    return F.regexp_like(text, F.lit(pattern)) & (F.regexp_extract(text, pattern, 0) == text)


def _rfc3339_part(text: Column, group: int) -> Column:
    """One capture group of RFC3339_PATTERN, '' when the group did not take part."""
    return F.regexp_extract(text, RFC3339_PATTERN, group)


def _rfc3339_utc_micros(text: Column) -> Column:
    """Epoch microseconds of an RFC 3339 string already known to match the pattern.

    The wall-clock fields are read as UTC, then the offset is subtracted by arithmetic
    rather than handed to a time-zone parser, which caps offsets at +-18:00 while RFC 3339
    allows up to +-23:59. NULL when the date does not exist (Feb 30, month 13).
    """
    fraction = F.rpad(F.substring(_rfc3339_part(text, 7), 1, FRACTION_DIGITS_KEPT), FRACTION_DIGITS_KEPT, "0")
    seconds = F.concat(_rfc3339_part(text, 6), F.lit("."), fraction).try_cast("decimal(8,6)")
    wall_clock_as_utc = F.try_make_timestamp_ltz(
        _rfc3339_part(text, 1).try_cast("int"),
        _rfc3339_part(text, 2).try_cast("int"),
        _rfc3339_part(text, 3).try_cast("int"),
        _rfc3339_part(text, 4).try_cast("int"),
        _rfc3339_part(text, 5).try_cast("int"),
        seconds,
        F.lit("UTC"),
    )
    offset_sign = F.when(_rfc3339_part(text, 8) == "-", F.lit(-1)).otherwise(F.lit(1))
    offset_seconds = F.coalesce(
        _rfc3339_part(text, 9).try_cast("long") * 3600 + _rfc3339_part(text, 10).try_cast("long") * 60,
        F.lit(0).cast("long"),
    )
    return F.unix_micros(wall_clock_as_utc) - offset_sign * offset_seconds * MICROS_PER_SECOND


def event_time_from_rfc3339(text: Column) -> Column:
    """Timestamp of an RFC 3339 date-time string, or NULL if it is not one.

    Accepts 'T', 't' or ' ' between date and time, 'Z'/'z' or a +-HH:MM offset, and any
    number of fraction digits (truncated to microseconds). The instant must fall in
    years 0001..9999 UTC, and the written year must not be 0000.
    """
    utc_micros = _rfc3339_utc_micros(text)
    is_rfc3339 = fully_matches(text, RFC3339_PATTERN) & (_rfc3339_part(text, 1) != "0000")
    is_in_range = utc_micros.between(MIN_EPOCH_MICROS, MAX_EPOCH_MICROS)
    return F.when(is_rfc3339 & is_in_range, F.timestamp_micros(utc_micros))


def event_time_from_epoch_millis(millis: Column) -> Column:
    """Timestamp of integer epoch milliseconds in years 0001..9999 UTC, else NULL."""
    is_in_range = millis.between(MIN_EPOCH_MILLIS, MAX_EPOCH_MILLIS)
    return F.when(is_in_range, F.timestamp_millis(millis))


def event_minute(event_time: Column) -> Column:
    """The UTC minute an event time falls in: the floor, also for instants before 1970.

    Integer arithmetic on epoch microseconds, not date_trunc: date_trunc works in the
    session time zone, and historic zone offsets are not whole minutes.
    """
    micros = F.unix_micros(event_time)
    return F.timestamp_micros(micros - F.pmod(micros, F.lit(MICROS_PER_MINUTE)))
