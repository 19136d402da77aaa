"""The speed layer's micro-batch log, read back: which batch consumed which Kafka offsets,
and the watermark it dropped late events by.

Every checkpoint the counter ever ran with is in ``speed_queries`` (job 'counter'), and
each of its batches in ``speed_microbatches`` (partitioned in buckets of batch ids:
``storage.speed_microbatches``). A long-running counter logs a batch a second, so only the
buckets whose offsets can touch the day's arrival window are read: the first batch of the
topic in each bucket is probed (``bucket_first_batches``, one small query per bucket), and
a bucket is skipped when, on every partition of the window,
the next bucket starts at or before the window's first offset (all of it lies before the
window) or the bucket starts at or after the window's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.speed_microbatches import bucket_first_batches, bucket_reader
from storage.speed_queries import COUNTER_JOB, RegisteredQuery, registered_queries

if TYPE_CHECKING:
    from cassandra.cluster import Session


@dataclass(frozen=True)
class ConsumedRange:
    """Offsets [start, end) of one partition read by one micro-batch."""

    query_id: str
    batch_id: int
    partition: int
    start: int
    end: int
    late_watermark_ms: int
    # The query's write floor (epoch millis; 0: none): a rebuild never wrote the minutes
    # before it (speed_layer.rebuild), so it counted none of their views.
    written_from_ms: int = 0


def _written_from_ms(query: RegisteredQuery) -> int:
    return int(query.write_floor.timestamp() * 1000) if query.write_floor else 0


def _overlaps(start: int, end: int, window: tuple[int, int]) -> bool:
    return start < window[1] and end > window[0]


def _bucket_may_overlap(first: dict[int, int], next_first: dict[int, int] | None,
                        windows: dict[int, tuple[int, int]]) -> bool:
    for partition, window in windows.items():
        if partition not in first or next_first is None or partition not in next_first:
            return True  # not provable from the probes: read the bucket
        if _overlaps(first[partition], next_first[partition], window):
            return True
    return False


def _ranges(query: RegisteredQuery, rows, topic: str, windows: dict[int, tuple[int, int]]) -> list[ConsumedRange]:
    found = []
    for row in rows:
        if row.topic != topic:  # a checkpoint once run against another topic: not these offsets
            continue
        for partition, end in (row.end_offsets or {}).items():
            start = (row.start_offsets or {}).get(partition, end)
            window = windows.get(partition)
            if end > start and window is not None and _overlaps(start, end, window):
                found.append(ConsumedRange(query.query_id, row.batch_id, partition, start, end,
                                           int(row.late_watermark_ms or 0), _written_from_ms(query)))
    return found


def consumed_ranges(session: "Session", topic: str, windows: dict[int, tuple[int, int]]) -> list[ConsumedRange]:
    """Every logged (batch, partition) range of ``topic`` of every counter query that
    overlaps ``windows`` (per partition: [first offset, end offset) of the arrival window)."""
    read = bucket_reader(session)
    found = []
    for query in registered_queries(session, COUNTER_JOB):
        query_id = query.query_id
        # A bucket without a batch of this topic proves nothing about its offsets: read it.
        firsts = [first.start_offsets if first else {} for _, first in bucket_first_batches(session, query_id, topic)]
        for bucket, first in enumerate(firsts):
            next_first = firsts[bucket + 1] if bucket + 1 < len(firsts) else None
            if _bucket_may_overlap(first, next_first, windows):
                found += _ranges(query, read(query_id, bucket), topic, windows)
    return found
