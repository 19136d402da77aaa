"""Make one day's batch version the one serving uses, or roll back (``viewcount promote``).

No Spark: a promotion reads the day's versions, checks the chosen one is complete and
that its own latest reconciliation passed (``reconciled_versions``), and switches with one
single-row compare-and-set on ``batch_promotions`` (``storage.batch_results.promote``; the
history row follows it). Serving picks a day's version from that row, so a reader sees the
old version or the new one, never a mix. ``--unreconciled`` promotes a version without a passing
reconciliation; the override is recorded (``unreconciled_promotions``) and said so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass

from storage.errors import UserError
from storage.settings import Settings

from counting.window import parse_day

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=parse_day, required=True, metavar="YYYY-MM-DD", help="the UTC day")
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

    def line(self) -> str:
        if not self.changed:
            return f"day {self.day}: version {self.version} is already promoted; nothing changed"
        action = "rolled back to" if self.previous is not None and self.version < self.previous else "promoted"
        previous = "none" if self.previous is None else f"version {self.previous}"
        override = "; without a passing reconciliation, by override (recorded)" if self.unreconciled else ""
        return f"day {self.day}: {action} version {self.version} (previous: {previous}){override}"


def unreconciled_refusal(day: dt.date, version: int, status: str | None) -> UserError:
    why = "its reconciliation failed" if status == "fail" else "it was never reconciled"
    return UserError(f"version {version} of {day} has no passing reconciliation ({why}): run "
                     f"`viewcount reconcile --date {day} --version {version}`, or promote it with --unreconciled")


def promote_version(day: dt.date, requested: int | None = None, settings: Settings | None = None, *,
                    unreconciled: bool = False) -> Outcome:
    """Serve ``requested`` (default: the newest complete version) for ``day``, once its own
    latest reconciliation passed; ``unreconciled`` overrides that, and the override is
    recorded. The nightly DAG passes the version it reconciled."""
    from storage.batch_results import promote, read_promotion, read_versions
    from storage.cassandra import connect
    from storage.reconciliations import read_version_status

    session = connect(settings or Settings.from_env())
    try:
        version = chosen_version(day, read_versions(session, day), requested)
        current = read_promotion(session, day)
        previous = current.version if current else None
        if previous == version:
            return Outcome(day, version, previous, changed=False)
        status = read_version_status(session, day, version)
        if status != "pass" and not unreconciled:
            raise unreconciled_refusal(day, version, status)
        override = status != "pass"
        if override:
            log.warning("day %s: promoting version %s without a passing reconciliation (status %s), by override",
                        day, version, status or "none")
        promote(session, day, version, previous, unreconciled=override, reconciliation=status)
        return Outcome(day, version, previous, changed=True, unreconciled=override)
    finally:
        session.cluster.shutdown()


def run(args: argparse.Namespace) -> int:
    print(promote_version(args.date, args.version, unreconciled=args.unreconciled).line())
    return 0
