"""Typed reads and writes of the speed layer's micro-batch log (``speed_microbatches``,
migrations 0002 and 0007): which Kafka offsets each counter batch consumed, the watermarks
it applied and the write timestamp of its cells.

A query's batches are partitioned by ``batch_id // BATCHES_PER_BUCKET``: a long-running
counter logs a batch a second, so readers probe a bucket's first batch before reading it
whole. A replayed batch rewrites the same row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from cassandra.cluster import Session

LOG_TABLE = "speed_microbatches"
BATCHES_PER_BUCKET = 10_000


@dataclass(frozen=True)
class BatchOffsets:
    """What one batch consumed, as its checkpoint's offset log says."""

    batch_id: int
    topic: str
    start_offsets: dict[int, int]  # first offset read, per partition
    end_offsets: dict[int, int]  # one past the last offset read
    late_watermark_ms: int
    eviction_watermark_ms: int
    batch_timestamp_ms: int


@dataclass(frozen=True)
class LoggedBatch:
    batch_id: int
    start_offsets: dict[int, int]
    end_offsets: dict[int, int]
    batch_time: dt.datetime | None  # UTC


def bucket_of(batch_id: int) -> int:
    return batch_id // BATCHES_PER_BUCKET


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


class MicrobatchLog:
    """Writes and reads ``speed_microbatches`` for one query (one checkpoint)."""

    def __init__(self, session: "Session", query_id: str):
        self.session = session
        self.query_id = query_id
        self._record = session.prepare(
            f"INSERT INTO {LOG_TABLE} (query_id, batch_bucket, batch_id, topic, start_offsets,"
            " end_offsets, late_watermark_ms, eviction_watermark_ms, batch_time, rows_written,"
            " write_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._write_timestamp = session.prepare(
            f"SELECT write_timestamp FROM {LOG_TABLE} WHERE query_id = ? AND batch_bucket = ? AND batch_id = ?"
        )
        self._progress = session.prepare(
            f"UPDATE {LOG_TABLE} SET rows_in = ?, late_dropped = ?, duplicates_dropped = ?,"
            " invalid = ?, duration_ms = ? WHERE query_id = ? AND batch_bucket = ? AND batch_id = ?"
        )

    def logged_write_timestamp(self, batch_id: int) -> int | None:
        """The write timestamp logged for a batch; None when the batch is not logged."""
        row = self.session.execute(self._write_timestamp, (self.query_id, bucket_of(batch_id), batch_id)).one()
        return row.write_timestamp if row else None

    def record(self, batch: BatchOffsets, rows_written: int, write_timestamp: int | None = None) -> None:
        self.session.execute(self._record, (
            self.query_id, bucket_of(batch.batch_id), batch.batch_id, batch.topic,
            batch.start_offsets, batch.end_offsets, batch.late_watermark_ms,
            batch.eviction_watermark_ms, batch.batch_timestamp_ms, rows_written, write_timestamp,
        ))

    def add_progress(self, batch_id: int, *, rows_in: int, late_dropped: int,
                     duplicates_dropped: int, invalid: dict[str, int], duration_ms: int) -> None:
        self.session.execute(self._progress, (
            rows_in, late_dropped, duplicates_dropped, invalid, duration_ms,
            self.query_id, bucket_of(batch_id), batch_id,
        ))

    def batches(self) -> list:
        """Every logged batch of this query, oldest first (buckets are filled in order)."""
        rows, bucket = [], 0
        while True:
            found = list(self.session.execute(
                f"SELECT * FROM {LOG_TABLE} WHERE query_id = %s AND batch_bucket = %s",
                (self.query_id, bucket),
            ))
            if not found:
                return rows
            rows.extend(found)
            bucket += 1


def bucket_first_batches(session: "Session", query_id: str, topic: str) -> Iterator[tuple[int, LoggedBatch | None]]:
    """Per log bucket of a query, in order: its first batch of ``topic`` (None when the
    bucket holds none). One small read per bucket (``BATCHES_PER_BUCKET`` batches)."""
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


def bucket_reader(session: "Session") -> Callable[[str, int], list]:
    """``read(query_id, bucket)``: the rows of one bucket with what the reconciler proves
    consumption from (batch_id, topic, start_offsets, end_offsets, late_watermark_ms);
    the statement is prepared once."""
    read = session.prepare(f"SELECT batch_id, topic, start_offsets, end_offsets, late_watermark_ms FROM {LOG_TABLE}"
                           " WHERE query_id = ? AND batch_bucket = ?")
    return lambda query_id, bucket: session.execute(read, (query_id, bucket))


def _batch(row) -> LoggedBatch:
    return LoggedBatch(row.batch_id, dict(row.start_offsets or {}), dict(row.end_offsets or {}),
                       _utc(row.batch_time))
