"""Make one day's batch version the one serving uses, or roll back (``viewcount promote``).

No Spark: a promotion reads the day's versions, checks the chosen one is complete and
that its own latest reconciliation passed (``reconciled_versions``), and switches with one
single-row compare-and-set on ``batch_promotions`` (``storage.batch_results.promote``; the
history row follows it). Serving picks a day's version from that row, so a reader sees the
old version or the new one, never a mix. ``--unreconciled`` promotes a version without a passing
reconciliation; the override is recorded (``unreconciled_promotions``) and said so. A
version whose passing reconciliation gated billable cells with tolerances looser than exact
(flags or ``VIEWCOUNT_RECONCILE_BILLABLE_*``) is promoted as an override too, recorded the
same way with those tolerances (kind 'loosened'), and said so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass

from typing import TYPE_CHECKING

from settings.errors import UserError, argument_type
from storage.reconciliations import money_text
from settings.environment import Settings

from counting.window import parse_day

if TYPE_CHECKING:
    from cassandra.cluster import Session

    from storage.restatements import Restatement

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=argument_type(parse_day), required=True, metavar="YYYY-MM-DD",
                        help="the UTC day")
    parser.add_argument("--version", type=_positive_int, metavar="N",
                        help="the complete version to serve; an earlier one is a rollback "
                             "(default: the newest complete version)")
    parser.add_argument("--unreconciled", action="store_true",
                        help="serve the version even though no reconciliation of it passed "
                             "(the override is recorded in unreconciled_promotions)")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number (1, 2, ...)")
    return int(text)


def chosen_version(day, versions, requested: int | None) -> int:
    """The version to promote, or a UserError saying why there is none."""
    from storage.batch_results import COMPLETE

    if not versions:
        raise UserError(f"day {day} has no batch version: run `viewcount batch --date {day}` first")
    complete = sorted(v.version for v in versions if v.status == COMPLETE)
    known = ", ".join(f"{v.version} ({v.status})" for v in sorted(versions, key=lambda v: v.version))
    if requested is None:
        if not complete:
            raise UserError(f"day {day} has no complete batch version (versions: {known})")
        return complete[-1]
    if requested not in {v.version for v in versions}:
        raise UserError(f"day {day} has no version {requested} (versions: {known})")
    if requested not in complete:
        raise UserError(f"version {requested} of {day} is not complete, it cannot be served (versions: {known})")
    return requested


@dataclass(frozen=True)
class Outcome:
    day: dt.date
    version: int
    previous: int | None
    changed: bool  # False when the version was already the promoted one
    unreconciled: bool = False  # promoted by override, without a passing reconciliation
    loosened: dict[str, float] | None = None  # promoted by override: passed with these loosened billable tolerances
    restatement: "Restatement | None" = None  # the record of a promotion that replaced a promoted version

    def line(self) -> str:
        if not self.changed:
            return f"day {self.day}: version {self.version} is already promoted; nothing changed"
        action = "rolled back to" if self.previous is not None and self.version < self.previous else "promoted"
        previous = "none" if self.previous is None else f"version {self.previous}"
        override = "; without a passing reconciliation, by override (recorded)" if self.unreconciled else ""
        if self.loosened and not self.unreconciled:
            override = f"; reconciled with {_loosened_text(self.loosened)}, by override (recorded)"
        restated = ""
        record = self.restatement
        if record is not None and (record.videos or not record.views_delta):
            restated = (f"; restated: {record.views_delta:+,} views, {record.videos_changed:,} videos changed, "
                        f"money {money_text(record.money_delta)} (recorded)")
        elif record is not None:  # versions not counted against each other: the totals only
            restated = f"; restated: {record.views_delta:+,} views, per-video changes unknown (recorded)"
        return f"day {self.day}: {action} version {self.version} (previous: {previous}){override}{restated}"


def restatement_record(session: "Session", day: dt.date, old: int, new: int, reason: str | None,
                       command: str) -> "Restatement":
    """The record of serving ``new`` instead of ``old``: per video the views and money
    that change (from the deltas the batch of ``new`` stored against ``old``; a version
    counted against another has none, and the record says so), the totals, why and who."""
    from storage.batch_results import read_versions
    from storage.catalog import read_entries
    from storage.restatements import Restatement, priced, read_version_deltas

    now = dt.datetime.now(dt.timezone.utc)
    restated_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
    why = reason or ("rollback by hand" if new < old else "promotion by hand of a new version over a final one")
    deltas = read_version_deltas(session, day, new, old)
    totals = {v.version: v.total_views or 0 for v in read_versions(session, day)}
    if deltas is None:
        why += f" (per-video changes unknown: version {new} was not counted against version {old})"
        deltas = []
    videos, money = priced(deltas, read_entries(session, [d.video_id for d in deltas]))
    return Restatement(day, restated_at, old, new, totals.get(new, 0) - totals.get(old, 0), len(videos),
                       {currency: format(amount, "f") for currency, amount in money.items()}, why, command,
                       tuple(videos))


def _loosened_text(loosened: dict[str, float]) -> str:
    return (f"billable tolerances looser than exact (abs {loosened.get('billable_abs', 0.0):g}, "
            f"rel {loosened.get('billable_rel', 0.0):g})")


def unreconciled_refusal(day: dt.date, version: int, status: str | None) -> UserError:
    why = "its reconciliation failed" if status == "fail" else "it was never reconciled"
    return UserError(f"version {version} of {day} has no passing reconciliation ({why}): run "
                     f"`viewcount reconcile --date {day} --version {version}`, or promote it with --unreconciled")


def promote_version(day: dt.date, requested: int | None, settings: Settings, *,
                    unreconciled: bool = False, reason: str | None = None,
                    command: str = "viewcount promote") -> Outcome:
    """Serve ``requested`` (default: the newest complete version) for ``day``, once its own
    latest reconciliation passed; ``unreconciled`` overrides that, and the override is
    recorded. A reconciliation that passed with billable tolerances looser than exact is
    an override of the exact gate as well: recorded the same way (kind 'loosened', the
    tolerances it gated with, ``command``) before the switch. The nightly DAG passes the
    version it reconciled. Replacing a promoted
    version writes a restatement record first (``reason``, default: a promotion or a
    rollback by hand; ``command``, who did it), removed again if the switch loses a race."""
    from storage.batch_results import LOOSENED, UNRECONCILED, PromotionConflict, promote, read_promotion, read_versions
    from storage.cassandra import connect
    from storage.reconciliations import billable_loosened, read_version_reconciliation
    from storage.restatements import delete_restatement, write_restatement

    session = connect(settings)
    try:
        version = chosen_version(day, read_versions(session, day), requested)
        current = read_promotion(session, day)
        previous = current.version if current else None
        if previous == version:
            return Outcome(day, version, previous, changed=False)
        reconciliation = read_version_reconciliation(session, day, version)
        status = reconciliation.status if reconciliation else None
        if status != "pass" and not unreconciled:
            raise unreconciled_refusal(day, version, status)
        loosened = billable_loosened(reconciliation.tolerances if reconciliation else None)
        override = UNRECONCILED if status != "pass" else LOOSENED if loosened else None
        if override == UNRECONCILED:
            log.warning("day %s: promoting version %s without a passing reconciliation (status %s), by override",
                        day, version, status or "none")
        elif override == LOOSENED:
            log.warning("day %s: promoting version %s, whose reconciliation passed with %s, by override",
                        day, version, _loosened_text(loosened))
        record = None
        if previous is not None:  # a final number changes: never without a record
            record = restatement_record(session, day, previous, version, reason, command)
            write_restatement(session, record)
        try:
            promote(session, day, version, previous, override=override, reconciliation=status,
                    tolerances=reconciliation.tolerances if reconciliation else None, command=command)
        except PromotionConflict:
            if record is not None:
                delete_restatement(session, day, record.restated_at)
            raise
        return Outcome(day, version, previous, changed=True, unreconciled=override == UNRECONCILED,
                       loosened=loosened or None, restatement=record)
    finally:
        session.cluster.shutdown()


def run(args: argparse.Namespace) -> int:
    command = "viewcount promote" + (" --unreconciled" if args.unreconciled else "")
    outcome = promote_version(args.date, args.version, Settings.from_env(), unreconciled=args.unreconciled,
                              command=command)
    print(outcome.line())
    return 0
