"""Reads of the speed layer's query registry (``speed_queries``) and of the micro-batch
log (``speed_microbatches``) that the counter's start-up guard and the reconciler share.

Every checkpoint a speed-layer job ever ran with is one row of ``speed_queries``; a
counter that rebuilt the speed table from a new checkpoint keeps there the first minute it
may write (``write_floor``): it never wrote the minutes before it (see
``speed_layer.rebuild``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from cassandra.cluster import Session

COUNTER_JOB = "counter"  # the job name the counter registers its queries under
QUERIES_TABLE = "speed_queries"
LOG_TABLE = "speed_microbatches"


@dataclass(frozen=True)
class RegisteredQuery:
    query_id: str
    checkpoint: str
    write_floor: dt.datetime | None  # UTC; None: the query writes every minute


@dataclass(frozen=True)
class LoggedBatch:
    batch_id: int
    start_offsets: dict[int, int]
    end_offsets: dict[int, int]
    batch_time: dt.datetime | None  # UTC


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def registered_queries(session: "Session", job: str) -> list[RegisteredQuery]:
    return [RegisteredQuery(row.query_id, row.checkpoint, _utc(row.write_floor)) for row in session.execute(
        f"SELECT query_id, checkpoint, write_floor FROM {QUERIES_TABLE} WHERE job = %s", (job,))]


def register_query(session: "Session", job: str, query_id: str, checkpoint: str,
                   write_floor: dt.datetime | None) -> RegisteredQuery:
    """Register a query once (the first start of its checkpoint) and return the row as
    registered: a restart keeps the write floor of the first start."""
    session.execute(
        f"INSERT INTO {QUERIES_TABLE} (job, query_id, checkpoint, first_started, write_floor)"
        " VALUES (%s, %s, %s, toTimestamp(now()), %s) IF NOT EXISTS",
        (job, query_id, checkpoint, write_floor),
    )
    row = session.execute(f"SELECT checkpoint, write_floor FROM {QUERIES_TABLE} WHERE job = %s AND query_id = %s",
                          (job, query_id)).one()
    return RegisteredQuery(query_id, row.checkpoint, _utc(row.write_floor))


def bucket_first_batches(session: "Session", query_id: str, topic: str) -> Iterator[tuple[int, LoggedBatch | None]]:
    """Per log bucket of a query, in order: its first batch of ``topic`` (None when the
    bucket holds none). One small read per bucket (10,000 batches)."""
    first = session.prepare(
        f"SELECT batch_id, topic, start_offsets, end_offsets, batch_time FROM {LOG_TABLE}"
        " WHERE query_id = ? AND batch_bucket = ? LIMIT 1")
    of_topic = session.prepare(
        f"SELECT batch_id, start_offsets, end_offsets, batch_time FROM {LOG_TABLE}"
        " WHERE query_id = ? AND batch_bucket = ? AND topic = ? LIMIT 1 ALLOW FILTERING")  # one partition
    bucket = 0
    while (row := session.execute(first, (query_id, bucket)).one()) is not None:
        if row.topic != topic:
            row = session.execute(of_topic, (query_id, bucket, topic)).one()
        yield bucket, _batch(row) if row is not None else None
        bucket += 1


def bucket_batches(session: "Session", query_id: str, bucket: int, topic: str) -> list[LoggedBatch]:
    """Every logged batch of ``topic`` in one bucket of a query, oldest first."""
    rows = session.execute(
        f"SELECT batch_id, topic, start_offsets, end_offsets, batch_time FROM {LOG_TABLE}"
        " WHERE query_id = %s AND batch_bucket = %s", (query_id, bucket))
    return [_batch(row) for row in rows if row.topic == topic]


def _batch(row) -> LoggedBatch:
    return LoggedBatch(row.batch_id, dict(row.start_offsets or {}), dict(row.end_offsets or {}),
                       _utc(row.batch_time))
