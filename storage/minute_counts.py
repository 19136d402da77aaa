"""Typed reads and writes of per-minute view counts: the one writer both layers call.

Writes are absolute values keyed by (video, day, minute): writing the same rows twice
leaves the same table, which is what makes a replayed micro-batch or a rerun batch safe.
Writes go out as prepared statements with a bounded number in flight, from the Spark
executors (``foreachPartition``), each reusing one Cassandra session per worker process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Iterable

from storage.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import DataFrame

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


def upsert_minute_counts(
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


def _from_epoch_millis(millis: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc)


def _write_partition(settings: Settings, table: str, rows: Iterable) -> None:
    from storage.cassandra import cached_session

    upsert_minute_counts(
        cached_session(settings),
        (MinuteCount(row.video_id, _from_epoch_millis(row.minute_ms), row.views) for row in rows),
        table=table,
    )


def write_minute_counts(
    counts: "DataFrame", settings: Settings, *, table: str = SPEED_TABLE
) -> None:
    """Write a DataFrame of (video_id, minute, views) as absolute counts; idempotent."""
    # Minutes travel as epoch millis: Python's conversion of Spark timestamps would
    # apply the worker's local time zone.
    counts.selectExpr("video_id", "unix_millis(minute) AS minute_ms", "views").foreachPartition(
        partial(_write_partition, settings, table)
    )


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
