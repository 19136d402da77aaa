"""The speed layer's micro-batch log, read back: which batch consumed which Kafka offsets,
and the watermark it dropped late events by.

Every checkpoint the counter ever ran with is in ``speed_queries`` (job 'counter'), and
each of its batches in ``speed_microbatches`` (partitioned by batch_id / 10,000). A
long-running counter logs a batch a second, so only the buckets whose offsets can touch
the day's arrival window are read: the first batch of each bucket is probed (one small
query per 10,000 batches), and a bucket is skipped when, on every partition of the window,
the next bucket starts at or before the window's first offset (all of it lies before the
window) or the bucket starts at or after the window's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cassandra.cluster import Session

COUNTER_JOB = "counter"
LOG_TABLE = "speed_microbatches"


@dataclass(frozen=True)
class ConsumedRange:
    """Offsets [start, end) of one partition read by one micro-batch."""

    query_id: str
    batch_id: int
    partition: int
    start: int
    end: int
    late_watermark_ms: int


def counter_query_ids(session: "Session") -> list[str]:
    return [row.query_id for row in session.execute(
        "SELECT query_id FROM speed_queries WHERE job = %s", (COUNTER_JOB,))]


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


def _ranges(query_id: str, rows, topic: str, windows: dict[int, tuple[int, int]]) -> list[ConsumedRange]:
    found = []
    for row in rows:
        if row.topic != topic:  # a checkpoint once run against another topic: not these offsets
            continue
        for partition, end in (row.end_offsets or {}).items():
            start = (row.start_offsets or {}).get(partition, end)
            window = windows.get(partition)
            if end > start and window is not None and _overlaps(start, end, window):
                found.append(ConsumedRange(query_id, row.batch_id, partition, start, end,
                                           int(row.late_watermark_ms or 0)))
    return found


def consumed_ranges(session: "Session", topic: str, windows: dict[int, tuple[int, int]]) -> list[ConsumedRange]:
    """Every logged (batch, partition) range of ``topic`` of every counter query that
    overlaps ``windows`` (per partition: [first offset, end offset) of the arrival window)."""
    probe = session.prepare(f"SELECT topic, start_offsets FROM {LOG_TABLE}"
                            " WHERE query_id = ? AND batch_bucket = ? LIMIT 1")
    read = session.prepare(f"SELECT batch_id, topic, start_offsets, end_offsets, late_watermark_ms FROM {LOG_TABLE}"
                           " WHERE query_id = ? AND batch_bucket = ?")
    found = []
    for query_id in counter_query_ids(session):
        firsts = []
        while (row := session.execute(probe, (query_id, len(firsts))).one()) is not None:
            # A bucket that starts on another topic proves nothing about this one's offsets.
            firsts.append(dict(row.start_offsets or {}) if row.topic == topic else {})
        for bucket, first in enumerate(firsts):
            next_first = firsts[bucket + 1] if bucket + 1 < len(firsts) else None
            if _bucket_may_overlap(first, next_first, windows):
                found += _ranges(query_id, session.execute(read, (query_id, bucket)), topic, windows)
    return found
