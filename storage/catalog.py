"""Typed reads and writes of the video catalog (migrations 0005, 0009): which videos are
billable, at what rate per 1,000 views and in which currency. Rows are upserted (a reload of the same file is a no-op);
the reconciler reads the whole table by token ranges (``reconcile.speed_snapshot``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Iterable

from storage.token_scan import TableScan

if TYPE_CHECKING:
    from cassandra.cluster import Session

CATALOG_TABLE = "video_catalog"
# The whole catalog, by token ranges (the reconciler's billing inputs).
CATALOG_SCAN = TableScan(CATALOG_TABLE, ("video_id",), ("video_id", "billable", "rate_per_1000", "currency"))
UNKNOWN_CURRENCY = "XXX"  # ISO 4217's code for "no currency": rows loaded before currencies were kept
CONCURRENCY = 64


@dataclass(frozen=True)
class CatalogEntry:
    video_id: str
    billable: bool
    rate_per_1000: Decimal
    title: str | None = None
    currency: str | None = None  # ISO 4217; None only on rows loaded before currencies were kept


def upsert_entries(session: "Session", entries: Iterable[CatalogEntry]) -> int:
    """Write the entries (replacing earlier rows of the same videos); returns how many."""
    from cassandra.concurrent import execute_concurrent_with_args

    statement = session.prepare(
        f"INSERT INTO {CATALOG_TABLE} (video_id, title, billable, rate_per_1000, currency, updated_at)"
        " VALUES (?, ?, ?, ?, ?, toTimestamp(now()))")
    rows = [(e.video_id, e.title, e.billable, e.rate_per_1000, e.currency) for e in entries]
    execute_concurrent_with_args(session, statement, rows, concurrency=CONCURRENCY, raise_on_first_error=True)
    return len(rows)


def read_entries(session: "Session", video_ids: Iterable[str]) -> dict[str, CatalogEntry]:
    """The catalog rows of these videos (absent videos are absent from the result)."""
    from cassandra.concurrent import execute_concurrent_with_args

    statement = session.prepare(
        f"SELECT video_id, title, billable, rate_per_1000, currency FROM {CATALOG_TABLE} WHERE video_id = ?")
    results = execute_concurrent_with_args(session, statement, [(video,) for video in video_ids],
                                           concurrency=CONCURRENCY, raise_on_first_error=True)
    return {row.video_id: CatalogEntry(row.video_id, bool(row.billable), row.rate_per_1000 or Decimal(0), row.title,
                                       row.currency)
            for _, rows in results for row in rows}
