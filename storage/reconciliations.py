"""Typed reads and writes of reconciliations (migration 0005).

``write_summary`` / ``read_summary`` store the day's summary JSON exactly as the public
contract defines it; serving returns ``read_summary`` for GET /v1/reconciliations/{day}.
Importing this module never imports Spark.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cassandra.cluster import Session

RECONCILIATION_TABLE = "reconciliations"
# The summary's causes (its "causes" counts, each divergence's "cause"); what each means and
# how it is proven: reconcile/causes.py.
CAUSES = ("late", "duplicate", "missing_in_speed", "missing_in_archive", "after_cutoff", "other")
SUMMARY_BY_DAY = f"SELECT summary FROM {RECONCILIATION_TABLE} WHERE day = ?"


def money_text(amounts: dict[str, str | Decimal]) -> str:
    """A summary's ``money_at_risk`` (currency -> exact amount) for a person: '0.035 EUR,
    1.2 USD', every digit kept; '0' when nothing is at risk."""
    def exact(amount: str | Decimal) -> str:
        text = format(Decimal(amount), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text

    return ", ".join(f"{exact(amount)} {currency}" for currency, amount in amounts.items()) or "0"


def write_summary(session: "Session", day: dt.date, summary: dict) -> None:
    """Store (replace) the day's reconciliation summary, ``summary`` the contract dict, and
    the outcome of its batch version (``reconciled_versions``), in one logged batch."""
    from cassandra.query import BatchStatement

    batch = BatchStatement()
    batch.add(session.prepare(
        "INSERT INTO reconciliations (day, status, batch_version, summary, report_uri, created_at)"
        " VALUES (?, ?, ?, ?, ?, toTimestamp(now()))"),
        (day, summary["status"], summary.get("batch_version"), json.dumps(summary, sort_keys=False),
         summary.get("report_uri")))
    if summary.get("batch_version") is not None:
        batch.add(session.prepare(
            "INSERT INTO reconciled_versions (day, batch_version, status, report_uri, reconciled_at)"
            " VALUES (?, ?, ?, ?, toTimestamp(now()))"),
            (day, summary["batch_version"], summary["status"], summary.get("report_uri")))
    session.execute(batch)


def read_version_status(session: "Session", day: dt.date, version: int) -> str | None:
    """The status ('pass' or 'fail') of the latest reconciliation of this batch version of
    the day; None when it was never reconciled."""
    row = session.execute(session.prepare(
        "SELECT status FROM reconciled_versions WHERE day = ? AND batch_version = ?"), (day, version)).one()
    return row.status if row else None


def read_summary(session: "Session", day: dt.date) -> dict | None:
    """The day's latest reconciliation summary, None when the day was never reconciled."""
    row = session.execute(session.prepare(SUMMARY_BY_DAY), (day,)).one()
    return summary_from(row.summary if row else None)


def summary_from(stored: str | None) -> dict | None:
    """The contract dict of a stored ``summary`` column; None when there is none."""
    return json.loads(stored) if stored else None
