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

from storage.batch_results import OVERRIDES_OF_DAYS, PROMOTED_DAYS, TOP_VIDEOS_READ, VERSION_DAY_READ
from storage.cassandra import RELEASE_READ
from storage.minute_counts import SPEED_DAY_LIVE_READ, SPEED_DAY_READ
from storage.reconciliations import RECONCILED_DAYS, RECONCILIATION_TABLE, SUMMARY_BY_DAY
from storage.restatements import RESTATEMENT_REQUESTS, RESTATEMENTS_OF_DAYS

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from cassandra.query import PreparedStatement

# The statements are their tables' (each table's module owns them); here, which the API
# prepares. name -> CQL; each answers at most one partition (a day has at most 1,440 minutes).
READS = {
    "speed": SPEED_DAY_READ,
    "speed_live": SPEED_DAY_LIVE_READ,
    "batch": VERSION_DAY_READ,
    "top": TOP_VIDEOS_READ,
    "release": RELEASE_READ,
}
RECONCILIATION_READ = "reconciliation"
# Read whole: every promoted day's version (serving's promotion snapshot, at most every
# VIEWCOUNT_SERVING_PROMOTION_REFRESH_S), PROMOTED_DAYS; every reconciled day, for /metrics
# and the nightly run's alerts (``infra/prometheus``), at most once a minute, RECONCILED_DAYS.
# For /metrics at most every few seconds (``serving.restatements``, ``serving.overrides``):
# RESTATEMENT_REQUESTS, RESTATEMENTS_OF_DAYS, OVERRIDES_OF_DAYS.
__all__ = ["READS", "RECONCILIATION_READ", "PROMOTED_DAYS", "RECONCILED_DAYS", "RESTATEMENT_REQUESTS",
           "RESTATEMENTS_OF_DAYS", "OVERRIDES_OF_DAYS", "prepare_reads", "prepare_reconciliation_read",
           "prepare_if_table"]


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
