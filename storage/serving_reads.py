"""The reads behind the HTTP API (``serving.store``), prepared once per connection.

Each statement reads one partition: a day's promotion row, a (video, day) of the speed
table or of a batch version, a day's top videos, a day's reconciliation summary; and, for
/metrics, the promoted and the reconciled days (a row per day). Serving
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
    "promotion": "SELECT version FROM batch_promotions WHERE day = ?",
    "speed": f"SELECT minute, views FROM {SPEED_TABLE}"
             " WHERE video_id = ? AND day = ? AND minute >= ? AND minute < ?",
    "batch": "SELECT minute, views FROM batch_minute_views WHERE video_id = ? AND day = ? AND version = ?",
    "top": "SELECT video_id, views FROM batch_top_videos WHERE day = ? AND version = ?",
    "release": "SELECT release_version FROM system.local",
}
RECONCILIATION_READ = "reconciliation"
# For /metrics and the nightly run's alerts (``infra/prometheus``): every promoted day and
# every reconciled day, a row per day each, read whole at most once a minute.
PROMOTED_DAYS = "SELECT day, version FROM batch_promotions"
RECONCILED_DAYS = f"SELECT day, status FROM {RECONCILIATION_TABLE}"


def _prepared(session: "Session", cql: str) -> "PreparedStatement":
    statement = session.prepare(cql)
    statement.fetch_size = None  # one page: a partition is at most 1,440 rows
    return statement


def prepare_reads(session: "Session") -> dict[str, "PreparedStatement"]:
    """Every read of ``READS``, and ``PROMOTED_DAYS`` as "promoted_days", prepared on ``session``."""
    return {name: _prepared(session, cql) for name, cql in {**READS, "promoted_days": PROMOTED_DAYS}.items()}


def prepare_reconciliation_read(session: "Session", keyspace: str,
                                cql: str = SUMMARY_BY_DAY) -> "PreparedStatement | None":
    """The read of a day's reconciliation summary (or another read of that table,
    ``RECONCILED_DAYS``); None while the keyspace has no reconciliations table (a schema
    older than migration 0005)."""
    tables = session.cluster.metadata.keyspaces.get(keyspace)
    if tables is None or RECONCILIATION_TABLE not in tables.tables:
        return None
    return _prepared(session, cql)
