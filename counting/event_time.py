"""Event time: RFC 3339 strings and epoch milliseconds to timestamps, and minute buckets.

Every function here is Column -> Column and never throws under ANSI mode: a value that
is not a valid time becomes NULL, and conversions that could overflow are only reached
behind a range check.

Parsing runs on every record of the speed layer, so it is written for cost as well as
correctness: one regular expression validates the whole string, and the fields are then
read by position (they are fixed-width once the pattern matched) instead of by one
regexp_extract per capture group.
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

# 1-based (position, width) of the fixed-width fields of a string that matched
# RFC3339_PATTERN: YYYY-MM-DDTHH:MM:SS, then an optional .fraction, then Z or +-HH:MM.
_YEAR, _MONTH, _DAY, _HOUR, _MINUTE, _SECOND = (1, 4), (6, 2), (9, 2), (12, 2), (15, 2), (18, 2)
_FRACTION_START = 21  # after the '.' at position 20, when there is a fraction
_NUMERIC_OFFSET_CHARS = len("+05:30")


def whole_text_regex(pattern: str) -> str:
    """A '^...$' pattern as a Java regex that regexp_like alone matches exactly like
    Python's re.fullmatch: Java's ``\\z`` is the absolute end, where ``$`` would also
    match before a final line terminator.

    Only for patterns whose body cannot match a line terminator (ours: character classes
    of digits, letters and punctuation), so any match from '^' to the end is the match.
    """
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"expected a '^...$' pattern, got {pattern!r}")
    return pattern[:-1] + r"\z"


RFC3339_REGEX = whole_text_regex(RFC3339_PATTERN)


def _field(text: Column, position_and_width: tuple[int, int]) -> Column:
    position, width = position_and_width
    return F.substring(text, position, width).try_cast("int")


def _fraction_micros(text: Column, is_utc: Column) -> Column:
    """The fraction digits (between position 21 and the offset) as microseconds, truncated."""
    offset_chars = F.when(is_utc, F.lit(1)).otherwise(F.lit(_NUMERIC_OFFSET_CHARS))
    fraction_chars = F.char_length(text) - (_FRACTION_START - 1) - offset_chars  # -1 without fraction
    kept = F.substring(text, F.lit(_FRACTION_START), F.least(fraction_chars, F.lit(FRACTION_DIGITS_KEPT)))
    return F.rpad(kept, FRACTION_DIGITS_KEPT, "0").try_cast("long")


def _offset_seconds(text: Column, is_utc: Column) -> Column:
    """The +-HH:MM at the end as signed seconds east of UTC, 0 for Z."""
    sign = F.when(F.substring(text, -_NUMERIC_OFFSET_CHARS, 1) == "-", F.lit(-1)).otherwise(F.lit(1))
    hours, minutes = F.substring(text, -5, 2).try_cast("long"), F.substring(text, -2, 2).try_cast("long")
    return F.when(is_utc, F.lit(0).cast("long")).otherwise(sign * (hours * 3600 + minutes * 60))


def _rfc3339_utc_micros(text: Column) -> Column:
    """Epoch microseconds of an RFC 3339 string already known to match the pattern.

    The wall-clock fields are read as UTC, then the offset is subtracted by arithmetic
    rather than handed to a time-zone parser, which caps offsets at +-18:00 while RFC 3339
    allows up to +-23:59. NULL when the date does not exist (Feb 30, month 13).
    """
    is_utc = F.substring(text, -1, 1).isin("Z", "z")
    wall_clock_as_utc = F.try_make_timestamp_ltz(
        _field(text, _YEAR),
        _field(text, _MONTH),
        _field(text, _DAY),
        _field(text, _HOUR),
        _field(text, _MINUTE),
        _field(text, _SECOND),
        F.lit("UTC"),
    )
    offset_micros = _offset_seconds(text, is_utc) * MICROS_PER_SECOND
    return F.unix_micros(wall_clock_as_utc) + _fraction_micros(text, is_utc) - offset_micros


def epoch_micros_from_rfc3339(text: Column) -> Column:
    """Epoch microseconds of an RFC 3339 date-time string, or NULL if it is not one.

    Not range-checked: ``event_time_from_epoch_micros`` does that. Kept apart so that
    ``parse_events`` can compute it once per record and reuse it.
    """
    is_rfc3339 = F.regexp_like(text, F.lit(RFC3339_REGEX)) & (F.substring(text, *_YEAR) != "0000")
    return F.when(is_rfc3339, _rfc3339_utc_micros(text))


def event_time_from_epoch_micros(micros: Column) -> Column:
    """Timestamp of epoch microseconds in years 0001..9999 UTC, else NULL."""
    return F.when(micros.between(MIN_EPOCH_MICROS, MAX_EPOCH_MICROS), F.timestamp_micros(micros))


def event_time_from_rfc3339(text: Column) -> Column:
    """Timestamp of an RFC 3339 date-time string, or NULL if it is not one.

    Accepts 'T', 't' or ' ' between date and time, 'Z'/'z' or a +-HH:MM offset, and any
    number of fraction digits (truncated to microseconds). The instant must fall in
    years 0001..9999 UTC, and the written year must not be 0000.
    """
    return event_time_from_epoch_micros(epoch_micros_from_rfc3339(text))


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
