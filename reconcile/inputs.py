"""What a reconciliation of day D compares: the batch version it checks, and that version's
arrival window.

The window is the batch's own (DESIGN): arrivals (Kafka timestamps) from
D 00:00 - MAX_FUTURE_SECONDS (an event of D may arrive up to that much before its
event_time) to the version's recorded cutoff (D+1 00:00 + grace). It is built from the
``batch_versions`` row with ``counting.window``; the cutoff is read, not recomputed, so a batch run with another grace is
reconciled against what it really read.

Plain Python, no Spark: the command checks its input before starting anything.
"""

from __future__ import annotations

import argparse
import datetime as dt

from counting.window import BatchWindow
from settings.errors import UserError
from storage.batch_results import BatchVersion

COMPLETE = "complete"


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number (1, 2, ...)")
    return int(text)


def chosen_version(day: dt.date, versions: list[BatchVersion], requested: int | None) -> BatchVersion:
    """The version to reconcile (default: the newest complete one), or a UserError saying
    why there is none."""
    if not versions:
        raise UserError(f"day {day} has no batch version: run `viewcount batch --date {day}` first")
    known = ", ".join(f"{v.version} ({v.status})" for v in sorted(versions, key=lambda v: v.version))
    complete = {v.version: v for v in versions if v.status == COMPLETE}
    if requested is None:
        if not complete:
            raise UserError(f"day {day} has no complete batch version (versions: {known})")
        return complete[max(complete)]
    if requested not in {v.version for v in versions}:
        raise UserError(f"day {day} has no batch version {requested} (versions: {known})")
    if requested not in complete:
        raise UserError(f"batch version {requested} of {day} is not complete (versions: {known})")
    return complete[requested]


def window_of(version: BatchVersion) -> BatchWindow:
    if version.cutoff is None or not version.parquet_uri:
        raise UserError(f"batch version {version.version} of {version.day} has no cutoff or Parquet output "
                        f"recorded; rerun `viewcount batch --date {version.day}`")
    return BatchWindow.with_cutoff(version.day, version.cutoff)
