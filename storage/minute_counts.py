"""Typed reads and writes of per-minute view counts: the one writer both layers call.

Writes are absolute values keyed by (video, day, minute): writing the same rows twice
leaves the same table, which is what makes a replayed micro-batch or a rerun batch safe.
Writes go out as prepared statements, grouped per (video, day) partition into unlogged
single-partition batches, with a bounded number in flight, from the Spark executors, each
reusing one Cassandra session per worker process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from collections import defaultdict
from typing import TYPE_CHECKING, Iterable, Iterator

from settings.environment import Settings
from storage.token_scan import TableScan

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import DataFrame

SPEED_TABLE = "speed_minute_views"
# The whole speed table, by token ranges of its partition key (the reconciler's snapshot).
SPEED_SCAN = TableScan(SPEED_TABLE, ("video_id", "day"), ("video_id", "day", "minute", "views"))
# One (video, day) partition whole (the API's reads, ``storage.serving_reads``): its cells,
# and its cells with their write timestamps (a partition the API keeps current from the
# cell feed, ``serving.live``: a pushed cell and the read keep the newer).
SPEED_DAY_READ = f"SELECT minute, views FROM {SPEED_TABLE} WHERE video_id = ? AND day = ?"
SPEED_DAY_LIVE_READ = f"SELECT minute, views, WRITETIME(views) FROM {SPEED_TABLE} WHERE video_id = ? AND day = ?"
# Two (video, day) partitions in one read (what serving's two parallel reads are measured
# against, bench/serving_read_cost.py).
SPEED_TWO_DAYS_READ = f"SELECT minute, views FROM {SPEED_TABLE} WHERE video_id = ? AND day IN (?, ?)"
DEFAULT_CONCURRENCY = 64
ROWS_PER_BATCH = 50  # ~3 KB per batch: under Cassandra's 5 KB batch-size warning
MS_PER_DAY = 86_400_000

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


def _chunks(rows: list, size: int) -> Iterator[list]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _grouped_statements(prepared, rows: Iterable[tuple], key_columns: int, rows_per_batch: int) -> Iterator:
    """One statement per partition (the first ``key_columns`` values of a row) and up to
    ``rows_per_batch`` rows: an unlogged batch to a single partition is applied by
    Cassandra as one mutation, and it saves the client a round trip per row (for a day's
    replay or a batch version, most rows share a partition with others)."""
    from cassandra.query import BatchStatement, BatchType

    by_partition: dict[tuple, list] = defaultdict(list)
    for values in rows:
        by_partition[values[:key_columns]].append(values)
    for group in by_partition.values():
        for chunk in _chunks(group, rows_per_batch):
            if len(chunk) == 1:
                yield prepared, chunk[0]
                continue
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for values in chunk:
                batch.add(prepared, values)
            yield batch, None


def write_partition_grouped(session: "Session", statement: str, rows: Iterable[tuple], *, key_columns: int,
                            concurrency: int = DEFAULT_CONCURRENCY, rows_per_batch: int = ROWS_PER_BATCH) -> int:
    """Execute an INSERT for every row of values, grouped per partition, at most
    ``concurrency`` requests in flight; returns the rows written. Raises on any failure."""
    from cassandra.concurrent import execute_concurrent

    rows = list(rows)
    execute_concurrent(session, _grouped_statements(session.prepare(statement), rows, key_columns, rows_per_batch),
                       concurrency=concurrency, raise_on_first_error=True)
    return len(rows)


def _upsert(table: str) -> str:
    return f"INSERT INTO {table} (video_id, day, minute, views, updated_at) VALUES (?, ?, ?, ?, toTimestamp(now()))"


def upsert_each_minute_count(session: "Session", rows: list[MinuteCount], *, table: str = SPEED_TABLE,
                             concurrency: int = DEFAULT_CONCURRENCY) -> None:
    """``upsert_minute_counts`` without its grouping: one statement per row, at most
    ``concurrency`` in flight (what the grouping is measured against, bench/minute_writes.py)."""
    from cassandra.concurrent import execute_concurrent_with_args

    statement = session.prepare(_upsert(table))
    execute_concurrent_with_args(session, statement, [(r.video_id, r.day, r.minute, r.views) for r in rows],
                                 concurrency=concurrency, raise_on_first_error=True)


def upsert_minute_counts(
    session: "Session",
    rows: Iterable[MinuteCount],
    *,
    table: str = SPEED_TABLE,
    concurrency: int = DEFAULT_CONCURRENCY,
    rows_per_batch: int = ROWS_PER_BATCH,
    write_timestamp: int | None = None,
) -> int:
    """Upsert absolute counts; returns the number of rows written. Raises on any failure.

    ``write_timestamp`` (microseconds) stamps every cell ``USING TIMESTAMP`` instead of the
    client's clock: the speed layer's batch order (``speed_layer.microbatch_log``), so an
    earlier batch's late writer never overwrites a later batch's count."""
    insert = _upsert(table)
    values = ((row.video_id, row.day, _utc(row.minute), row.views) for row in rows)
    if write_timestamp is not None:
        insert += " USING TIMESTAMP ?"
        values = ((*row, int(write_timestamp)) for row in values)
    return write_partition_grouped(session, insert, values, key_columns=2, concurrency=concurrency,
                                   rows_per_batch=rows_per_batch)


def _from_epoch_millis(millis: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc)


def _write_partition(settings: Settings, table: str, write_timestamp: int | None, rows: Iterable) -> Iterator[int]:
    from storage.cassandra import cached_session

    yield upsert_minute_counts(
        cached_session(settings),
        (MinuteCount(row.video_id, _from_epoch_millis(row.minute_ms), row.views) for row in rows),
        table=table, write_timestamp=write_timestamp,
    )


def write_minute_counts(
    counts: "DataFrame", settings: Settings, *, table: str = SPEED_TABLE, write_timestamp: int | None = None
) -> int:
    """Write a DataFrame of (video_id, minute, views) as absolute counts; idempotent.
    Returns the number of rows written, counted by the writers themselves (one pass).
    ``write_timestamp``: see ``upsert_minute_counts``. The executors' JVMs write them
    (``storage.jvm_rows``) unless ``VIEWCOUNT_CASSANDRA_WRITER=python``."""
    # Minutes travel as epoch millis: Python's conversion of Spark timestamps would
    # apply the worker's local time zone.
    minutes = counts.selectExpr("video_id", "unix_millis(minute) AS minute_ms", "views")
    if settings.cassandra.writer == "python":
        return int(minutes.rdd.mapPartitions(partial(_write_partition, settings, table, write_timestamp)).sum())
    from storage.jvm_rows import write_rows

    insert = _upsert(table)
    columns = ["video_id", f"floor(minute_ms / {MS_PER_DAY}) AS day", "minute_ms", "views"]
    if write_timestamp is not None:
        insert += " USING TIMESTAMP ?"
        columns.append(f"CAST({int(write_timestamp)} AS BIGINT) AS write_timestamp")
    return write_rows(minutes.selectExpr(*columns), insert, settings, key_columns=2,
                      rows_per_batch=ROWS_PER_BATCH, concurrency=DEFAULT_CONCURRENCY)


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


def speed_counts_for(settings: Settings, videos: set[str], day: dt.date) -> dict[tuple[str, int], int]:
    """(video_id, minute epoch ms) -> views of the speed table for these videos on one day."""
    from cassandra.concurrent import execute_concurrent_with_args

    from storage.cassandra import connect

    session = connect(settings)
    try:
        statement = session.prepare(f"SELECT video_id, minute, views FROM {SPEED_TABLE} WHERE video_id = ? AND day = ?")
        results = execute_concurrent_with_args(session, statement, [(video, day) for video in videos],
                                               concurrency=64)
        counts = {}
        for success, rows in results:
            for row in rows:
                minute = row.minute.replace(tzinfo=dt.timezone.utc)
                counts[(row.video_id, int(minute.timestamp() * 1000))] = row.views
        return counts
    finally:
        session.cluster.shutdown()


def read_every_minute_count(session: "Session", *, table: str = SPEED_TABLE) -> list[MinuteCount]:
    """Every cell of the table (a test's keyspace, or a small one)."""
    return [MinuteCount(row.video_id, _utc(row.minute), row.views)
            for row in session.execute(f"SELECT video_id, minute, views FROM {table}")]


def read_partitions(session: "Session", *, table: str = SPEED_TABLE) -> list[tuple[str, dt.date]]:
    """Every (video_id, day) partition of the table."""
    return [(row.video_id, row.day.date()) for row in session.execute(f"SELECT DISTINCT video_id, day FROM {table}")]


def read_write_timestamps(session: "Session", *, table: str = SPEED_TABLE) -> dict[tuple[str, dt.datetime], tuple[int, int]]:
    """(video_id, minute UTC) -> (views, write timestamp in microseconds) of every cell."""
    rows = session.execute(f"SELECT video_id, minute, views, writetime(views) AS stamp FROM {table}")
    return {(row.video_id, _utc(row.minute)): (row.views, row.stamp) for row in rows}


def delete_minute_count(session: "Session", video_id: str, minute: dt.datetime, *, table: str = SPEED_TABLE) -> None:
    """Delete one cell (``minute`` UTC), as a lost write would leave it."""
    minute = _utc(minute)
    session.execute(session.prepare(f"DELETE FROM {table} WHERE video_id = ? AND day = ? AND minute = ?"),
                    (video_id, minute.date(), minute))


def prepare_minute_range_read(session: "Session", *, table: str = SPEED_TABLE):
    """The statement reading one partition's cells in [first minute, end minute):
    values (video_id, day, first, end)."""
    return session.prepare(f"SELECT minute, views FROM {table} WHERE video_id = ? AND day = ? AND minute >= ? AND minute < ?")
