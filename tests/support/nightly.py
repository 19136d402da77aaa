"""Helpers for the tests that run the nightly DAG (`viewcount nightly`): the task lines it
prints per day, and what a day's batch looks like in Cassandra afterwards."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from tests.support.batch import version_cells, version_top

TASKS = ["archive_complete", "validate_archive", "batch", "validate_batch", "reconcile", "publish_report",
         "gate", "promote"]
# The branch that restates earlier promoted days, after archive_complete; Airflow may run
# its tasks between those of the day's own chain.
RESTATE_TASKS = ["find_restatements", "restate"]


def chain(outcomes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The outcomes of the day's own chain (TASKS), in the order they came."""
    return [outcome for outcome in outcomes if outcome[0] in TASKS]


def restate_branch(outcomes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [outcome for outcome in outcomes if outcome[0] in RESTATE_TASKS]
TASK_LINE = re.compile(r"^  (\w+)\s+(success|failed|up_for_retry|up_for_reschedule)\s", re.MULTILINE)
# `viewcount nightly` opens each day with the log it writes and closes it with a verdict.
DAY_OPENS = re.compile(r"^airflow dags test viewcount_nightly (\S+) \(log: (.+)\)$")
DAY_CLOSES = re.compile(r"^viewcount_nightly (\S+): (succeeded|FAILED) in (\d+) s$")
OUTCOME = re.compile(r"^  (\w+)\s+(\w+)\s+(\d+) s$")


@dataclass
class DayRun:
    """One day of a `viewcount nightly` run, from its stderr."""

    log: str
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    seconds: list[int] = field(default_factory=list)  # since the day's run started, per outcome
    verdict: str | None = None
    duration_s: int | None = None


def day_runs(stderr: str) -> dict[dt.date, DayRun]:
    days, current = {}, None
    for line in stderr.splitlines():
        if opens := DAY_OPENS.match(line):
            current = days.setdefault(dt.date.fromisoformat(opens.group(1)), DayRun(opens.group(2)))
        elif (closes := DAY_CLOSES.match(line)) and current is not None:
            current.verdict, current.duration_s = closes.group(2), int(closes.group(3))
        elif (outcome := OUTCOME.match(line)) and current is not None:
            current.outcomes.append((outcome.group(1), outcome.group(2)))
            current.seconds.append(int(outcome.group(3)))
    return days


@dataclass(frozen=True)
class DayState:
    """A day's batch versions, promotion and reconciliation, and the rows of one version."""

    promoted: int | None
    promotions: list  # storage.batch_results.Promotion, newest first
    versions: dict  # version -> storage.batch_results.BatchVersion
    summary: dict | None
    cells: dict  # (video, minute ms) -> views of the promoted version (else of the newest)
    top: list  # (rank, video, views) of that version


def day_state(settings, day: dt.date) -> DayState:
    from storage.batch_results import read_promotion, read_promotion_history, read_versions
    from storage.cassandra import connect
    from storage.reconciliations import read_summary

    session = connect(settings)
    try:
        promotion = read_promotion(session, day)
        versions = {version.version: version for version in read_versions(session, day)}
        shown = promotion.version if promotion else max(versions, default=None)
        return DayState(promotion.version if promotion else None, read_promotion_history(session, day), versions,
                        read_summary(session, day),
                        version_cells(session, day, shown) if shown else {},
                        version_top(session, day, shown) if shown else [])
    finally:
        session.cluster.shutdown()


def day_version_cells(settings, day: dt.date, version: int) -> dict:
    from storage.cassandra import connect

    session = connect(settings)
    try:
        return version_cells(session, day, version)
    finally:
        session.cluster.shutdown()
