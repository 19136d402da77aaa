"""The reads behind the HTTP API (``serving.store``), prepared once per connection.

Each statement reads one partition: a (video, day) of the speed table or of a batch
version, whole (serving caches partitions, and answers windows of them), a day's top videos, a day's reconciliation summary; and the promoted
days (a row per day: serving keeps them in memory) and, for /metrics, the reconciled days
the restatement requests and records, and the promotion overrides. Serving
sends them with ``execute_async`` and decodes the rows itself (plain tuples, one page).
Importing this module never imports Spark or the driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.minute_counts import SPEED_TABLE
from storage.reconciliations import RECONCILIATION_TABLE, SUMMARY_BY_DAY

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from cassandra.query import PreparedStatement

# name -> CQL; each answers at most one partition (a day has at most 1,440 minutes).
READS = {
    "speed": f"SELECT minute, views FROM {SPEED_TABLE} WHERE video_id = ? AND day = ?",
    # A partition the API will hold and keep current from the cell feed (serving.live):
    # each cell with its write timestamp, so a pushed cell and the read keep the newer.
    "speed_live": f"SELECT minute, views, WRITETIME(views) FROM {SPEED_TABLE} WHERE video_id = ? AND day = ?",
    "batch": "SELECT minute, views FROM batch_minute_views WHERE video_id = ? AND day = ? AND version = ?",
    "top": "SELECT video_id, views FROM batch_top_videos WHERE day = ? AND version = ?",
    "release": "SELECT release_version FROM system.local",
}
RECONCILIATION_READ = "reconciliation"
# Every promoted day's version, a row per day, read whole (serving's promotion snapshot,
# at most every VIEWCOUNT_SERVING_PROMOTION_REFRESH_S); every reconciled day, for /metrics
# and the nightly run's alerts (``infra/prometheus``), at most once a minute.
PROMOTED_DAYS = "SELECT day, version FROM batch_promotions"
RECONCILED_DAYS = f"SELECT day, status FROM {RECONCILIATION_TABLE}"
# For /metrics (``storage.restatements``, migration 0012), at most every few seconds: a
# topic's restatement requests (one partition, a handful of rows a week), and the
# restatement records of those requests' days (one partition per day).
RESTATEMENT_REQUESTS = ("restatement_requests", "SELECT day, status FROM restatement_requests WHERE topic = ?")
RESTATEMENTS_OF_DAYS = ("restatements", "SELECT day FROM restatements WHERE day IN ?")
# For /metrics (``serving.overrides``, migration 0013), at most every few seconds: the
# promotions by override of the recent days (one partition per day, a row per override).
OVERRIDES_OF_DAYS = ("unreconciled_promotions", "SELECT kind FROM unreconciled_promotions WHERE day IN ?")


def _prepared(session: "Session", cql: str) -> "PreparedStatement":
    statement = session.prepare(cql)
    statement.fetch_size = None  # one page: a partition is at most 1,440 rows
    statement.is_idempotent = True  # a read: the driver may send it again (speculative execution)
    return statement


def prepare_reads(session: "Session") -> dict[str, "PreparedStatement"]:
    """Every read of ``READS``, and ``PROMOTED_DAYS`` as "promoted_days", prepared on ``session``."""
    return {name: _prepared(session, cql) for name, cql in {**READS, "promoted_days": PROMOTED_DAYS}.items()}


def prepare_reconciliation_read(session: "Session", keyspace: str,
                                cql: str = SUMMARY_BY_DAY) -> "PreparedStatement | None":
    """The read of a day's reconciliation summary (or another read of that table,
    ``RECONCILED_DAYS``); None while the keyspace has no reconciliations table (a schema
    older than migration 0005)."""
    return prepare_if_table(session, keyspace, RECONCILIATION_TABLE, cql)


def prepare_if_table(session: "Session", keyspace: str, table: str, cql: str) -> "PreparedStatement | None":
    """``cql``, a read of ``table``, prepared; None while the keyspace has no such table (a
    schema older than the migration that adds it)."""
    tables = session.cluster.metadata.keyspaces.get(keyspace)
    if tables is None or table not in tables.tables:
        return None
    return _prepared(session, cql)
