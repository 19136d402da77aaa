"""Typed reads and writes of the speed layer's query registry (``speed_queries``), which
the counter's start-up guard and the reconciler share (its micro-batch log is
``storage.speed_microbatches``).

Every checkpoint a speed-layer job ever ran with is one row of ``speed_queries``; a
counter that rebuilt the speed table from a new checkpoint keeps there the first minute it
may write (``write_floor``): it never wrote the minutes before it (see
``speed_layer.rebuild``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cassandra.cluster import Session

COUNTER_JOB = "counter"  # the job name the counter registers its queries under
QUERIES_TABLE = "speed_queries"


@dataclass(frozen=True)
class RegisteredQuery:
    query_id: str
    checkpoint: str
    write_floor: dt.datetime | None  # UTC; None: the query writes every minute


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


def every_registered_query(session: "Session") -> list[tuple[str, RegisteredQuery]]:
    """(job, query) of every registered query of every job."""
    return [(row.job, RegisteredQuery(row.query_id, row.checkpoint, _utc(row.write_floor))) for row in session.execute(
        f"SELECT job, query_id, checkpoint, write_floor FROM {QUERIES_TABLE}")]
