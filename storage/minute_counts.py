"""Typed reads and writes of per-minute view counts: the one writer both layers call.

Writes are absolute values keyed by (video, day, minute): writing the same rows twice
leaves the same table, which is what makes a replayed micro-batch or a rerun batch safe.
Writes go out as prepared statements with a bounded number in flight.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from cassandra.cluster import Session

SPEED_TABLE = "speed_minute_views"
DEFAULT_CONCURRENCY = 64


@dataclass(frozen=True)
class MinuteCount:
    video_id: str
    minute: dt.datetime  # UTC, whole minute
    views: int

    @property
    def day(self) -> dt.date:
        return self.minute.date()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def write_minute_counts(
    session: "Session",
    rows: Iterable[MinuteCount],
    *,
    table: str = SPEED_TABLE,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> int:
    """Upsert absolute counts; returns the number of rows written. Raises on any failure."""
    from cassandra.concurrent import execute_concurrent_with_args

    statement = session.prepare(
        f"INSERT INTO {table} (video_id, day, minute, views, updated_at)"
        " VALUES (?, ?, ?, ?, toTimestamp(now()))"
    )
    parameters = [(row.video_id, row.day, _utc(row.minute), row.views) for row in rows]
    results = execute_concurrent_with_args(
        session, statement, parameters, concurrency=concurrency, raise_on_first_error=True
    )
    return len(results)


def read_minute_counts(
    session: "Session", video_id: str, day: dt.date, *, table: str = SPEED_TABLE
) -> list[MinuteCount]:
    statement = session.prepare(
        f"SELECT minute, views FROM {table} WHERE video_id = ? AND day = ?"
    )
    return [
        MinuteCount(video_id, _utc(row.minute), row.views)
        for row in session.execute(statement, (video_id, day))
    ]
