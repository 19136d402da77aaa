"""Typed reads and writes of reconciliations (migrations 0005, 0006 and 0013).

``write_summary`` / ``read_summary`` store the day's summary JSON exactly as the public
contract defines it; serving returns ``read_summary`` for GET /v1/reconciliations/{day}.
Importing this module never imports Spark.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cassandra.cluster import Session

RECONCILIATION_TABLE = "reconciliations"
# The summary's causes (its "causes" counts, each divergence's "cause"); what each means and
# how it is proven: reconcile/causes.py.
CAUSES = ("late", "duplicate", "missing_in_speed", "missing_in_archive", "after_cutoff", "other")
SUMMARY_BY_DAY = f"SELECT summary FROM {RECONCILIATION_TABLE} WHERE day = ?"
RECONCILED_DAYS = f"SELECT day, status FROM {RECONCILIATION_TABLE}"  # every reconciled day's status


def money_text(amounts: dict[str, str | Decimal]) -> str:
    """A summary's ``money_at_risk`` (currency -> exact amount) for a person: '0.035 EUR,
    1.2 USD', every digit kept; '0' when nothing is at risk."""
    def exact(amount: str | Decimal) -> str:
        text = format(Decimal(amount), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text

    return ", ".join(f"{exact(amount)} {currency}" for currency, amount in amounts.items()) or "0"


def write_summary(session: "Session", day: dt.date, summary: dict) -> None:
    """Store (replace) the day's reconciliation summary, ``summary`` the contract dict, and
    the outcome of its batch version (``reconciled_versions``: the status and the
    tolerances it gated with), in one logged batch."""
    from cassandra.query import BatchStatement

    batch = BatchStatement()
    batch.add(session.prepare(
        "INSERT INTO reconciliations (day, status, batch_version, summary, report_uri, created_at)"
        " VALUES (?, ?, ?, ?, ?, toTimestamp(now()))"),
        (day, summary["status"], summary.get("batch_version"), json.dumps(summary, sort_keys=False),
         summary.get("report_uri")))
    if summary.get("batch_version") is not None:
        batch.add(session.prepare(
            "INSERT INTO reconciled_versions (day, batch_version, status, report_uri, tolerances, reconciled_at)"
            " VALUES (?, ?, ?, ?, ?, toTimestamp(now()))"),
            (day, summary["batch_version"], summary["status"], summary.get("report_uri"),
             summary.get("tolerances")))
    session.execute(batch)


# The billing gate's default: a billable cell within tolerance only when speed equals batch.
EXACT_BILLABLE = {"billable_abs": 0.0, "billable_rel": 0.0}


def billable_loosened(tolerances: dict[str, float] | None) -> dict[str, float]:
    """Of ``tolerances`` (name -> value, as a summary or ``reconciled_versions`` keeps them;
    None or {}: gated before they were kept, so exact), the billable ones looser than exact.
    A version that passed its gate with any is promoted only as a recorded override
    (``batch_layer.promotion``): money was allowed to differ."""
    return {name: float(value) for name, exact in EXACT_BILLABLE.items()
            if (value := (tolerances or {}).get(name)) is not None and value > exact}


@dataclass(frozen=True)
class VersionReconciliation:
    """The latest reconciliation of one batch version: 'pass' or 'fail', and the
    tolerances it gated with (name -> value; {} when gated before they were kept, exact)."""

    status: str
    tolerances: dict[str, float]


def read_version_reconciliation(session: "Session", day: dt.date, version: int) -> VersionReconciliation | None:
    """The latest reconciliation of this batch version of the day; None when it was never reconciled."""
    row = session.execute(session.prepare(
        "SELECT status, tolerances FROM reconciled_versions WHERE day = ? AND batch_version = ?"),
        (day, version)).one()
    return VersionReconciliation(row.status, dict(row.tolerances or {})) if row else None


def read_version_status(session: "Session", day: dt.date, version: int) -> str | None:
    """The status ('pass' or 'fail') of the latest reconciliation of this batch version of
    the day; None when it was never reconciled."""
    reconciliation = read_version_reconciliation(session, day, version)
    return reconciliation.status if reconciliation else None


def read_summary(session: "Session", day: dt.date) -> dict | None:
    """The day's latest reconciliation summary, None when the day was never reconciled."""
    row = session.execute(session.prepare(SUMMARY_BY_DAY), (day,)).one()
    return summary_from(row.summary if row else None)


def summary_from(stored: str | None) -> dict | None:
    """The contract dict of a stored ``summary`` column; None when there is none."""
    return json.loads(stored) if stored else None


def write_status(session: "Session", day: dt.date, status: str) -> None:
    """Set a day's reconciliation status alone (a test's stand-in for a reconciliation)."""
    session.execute(session.prepare(f"INSERT INTO {RECONCILIATION_TABLE} (day, status) VALUES (?, ?)"), (day, status))


def write_summary_text(session: "Session", day: dt.date, stored: str) -> None:
    """Store a day's summary column as given, nothing else of the row (a test's stand-in)."""
    session.execute(session.prepare(f"INSERT INTO {RECONCILIATION_TABLE} (day, summary) VALUES (?, ?)"), (day, stored))


def delete_day(session: "Session", day: dt.date) -> None:
    """Forget a day's reconciliation and the outcomes of its versions."""
    for table in (RECONCILIATION_TABLE, "reconciled_versions"):
        session.execute(session.prepare(f"DELETE FROM {table} WHERE day = ?"), (day,))
