"""Which arrivals the batch of day D reads: its cutoff, its window and its archive hours.

Day D counts the events whose event_time falls in D and that arrived (Kafka timestamp)
before the cutoff, D+1 00:00 UTC + grace (DESIGN). The window of arrivals read starts
``MAX_FUTURE_SECONDS`` before D, not at D: the counting rules accept an event_time up to
that far ahead of its Kafka timestamp, so a view at D 00:02 may have arrived at
D-1 23:58. Nothing that arrived earlier can count for D.

Plain Python, no Spark: the CLI validates arguments with it before starting anything.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from counting.durations import duration_text, parse_duration
from counting.reasons import MAX_FUTURE_SECONDS

DEFAULT_GRACE = dt.timedelta(hours=1)
# A longer grace would make one day's batch read more than two days of archive.
MAX_GRACE = dt.timedelta(hours=24)
DATE_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
EPOCH_DAY = dt.date(1970, 1, 1)  # Kafka timestamps start here

Hour = tuple[dt.date, int]  # an archive partition: (arrival_date, arrival_hour)


def parse_day(text: str) -> dt.date:
    """A UTC day 'YYYY-MM-DD' from 1970 on; ValueError for anything else (the command
    line's edge turns it into a usage error: ``settings.errors.argument_type``)."""
    try:
        day = dt.date.fromisoformat(text) if DATE_TEXT.match(text) else None
    except ValueError:
        day = None
    if day is None or day < EPOCH_DAY:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD (from 1970-01-01 on)")
    return day


def parse_grace(text: str) -> dt.timedelta:
    """A grace like '1h', '90m', '1h30m' or '0s' (``counting.durations``), 0 to 24 hours;
    ValueError for anything else."""
    grace = parse_duration(text)
    if grace > MAX_GRACE:
        raise ValueError(f"grace {text} is longer than {MAX_GRACE.total_seconds() / 3600:g} hours")
    return grace


def latest_closed_day(now: dt.datetime, grace: dt.timedelta = DEFAULT_GRACE) -> dt.date:
    """The newest UTC day whose cutoff (next midnight + grace) has passed at ``now``."""
    return (now - dt.timedelta(days=1) - grace).date()


def _hour_of(instant: dt.datetime) -> Hour:
    return instant.date(), instant.hour


@dataclass(frozen=True)
class BatchWindow:
    """Day D and its grace: every instant the batch of D needs, all UTC."""

    day: dt.date
    grace: dt.timedelta = DEFAULT_GRACE

    @property
    def day_start(self) -> dt.datetime:
        return dt.datetime(self.day.year, self.day.month, self.day.day, tzinfo=dt.timezone.utc)

    @property
    def day_end(self) -> dt.datetime:
        return self.day_start + dt.timedelta(days=1)

    @property
    def start(self) -> dt.datetime:
        """The first arrival that can hold an event of D."""
        return self.day_start - dt.timedelta(seconds=MAX_FUTURE_SECONDS)

    @property
    def cutoff(self) -> dt.datetime:
        """Arrivals from here on are not counted for D."""
        return self.day_end + self.grace

    def hours(self) -> list[Hour]:
        """The archive hours that hold arrivals in [start, cutoff), in order."""
        hours, instant = [], self.start.replace(minute=0, second=0, microsecond=0)
        while instant < self.cutoff:
            hours.append(_hour_of(instant))
            instant += dt.timedelta(hours=1)
        return hours

    def hours_after_cutoff(self, span: dt.timedelta) -> list[Hour]:
        """The archive hours that hold arrivals in [cutoff, cutoff + span) and are not
        among ``hours()`` (a cutoff inside an hour leaves that hour there)."""
        hours, instant = [], self.cutoff.replace(minute=0, second=0, microsecond=0)
        read = set(self.hours())
        while instant < self.cutoff + span:
            if _hour_of(instant) not in read:
                hours.append(_hour_of(instant))
            instant += dt.timedelta(hours=1)
        return hours

    def dates(self) -> list[dt.date]:
        return sorted({date for date, _ in self.hours()})

    @classmethod
    def with_cutoff(cls, day: dt.date, cutoff: dt.datetime) -> "BatchWindow":
        """The window of a batch that recorded this cutoff."""
        day_end = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
        return cls(day, cutoff - day_end)

    def is_over(self, now: dt.datetime) -> bool:
        """True once no arrival that counts for D can still come (now is past the cutoff)."""
        return now >= self.cutoff

    def describe(self) -> str:
        return (f"arrivals [{_iso(self.start)}, {_iso(self.cutoff)}) in {len(self.hours())} archive hours, "
                f"cutoff {_iso(self.cutoff)} (grace {duration_text(self.grace)})")


def _iso(instant: dt.datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
