"""The nightly run's data-quality gates for day D, with their inputs read from the stack.

- ``validate_archive``: the raw records of D's arrival window (schema) and, per Kafka
  partition, Kafka coordinates present and offsets without holes or repeats;
- ``validate_batch``: the newest complete batch version of D (no missing field or
  duplicate key, counts >= 1, ids well formed) and its total against the distinct valid
  events of D, recounted from the archive with ``counting``;
- ``validate_reconciliation``: the summary's divergences and figures agree.

Each returns a ``Quality`` whose Data Docs are published to S3 beside the day's report;
``gate()`` raises ``QualityGateFailed`` when a critical expectation failed.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

from settings.errors import UserError
from settings.environment import Settings

from reconcile.quality import frames, suites
from reconcile.quality.validate import QualityRun, SuiteResult

log = logging.getLogger(__name__)


class QualityGateFailed(UserError):
    exit_code = 4


@dataclass
class Quality:
    day: dt.date
    results: list[SuiteResult]
    docs_uri: str

    @property
    def blocking(self) -> list[SuiteResult]:
        return [result for result in self.results if result.blocking]

    def gate(self, raise_on_blocking: bool = True) -> str:
        for result in self.results:
            level = logging.INFO if result.success else logging.ERROR if result.blocking else logging.WARNING
            log.log(level, f"quality {self.day}: {result.line()}")
        if self.blocking and raise_on_blocking:
            failed = "; ".join(f"{r.suite}: {', '.join(r.critical_failed)}" for r in self.blocking)
            raise QualityGateFailed(f"day {self.day} failed critical expectations ({failed}); "
                                    f"see {self.docs_uri}")
        return self.docs_uri


def _run(day: dt.date, stage: str, settings: Settings, checks) -> Quality:
    """``checks``: (frame, suite factory) pairs. Suites are built only once the run's Great
    Expectations context exists: building one with no active context fails in a fresh process."""
    run = QualityRun(day, stage)
    for frame, make_suite in checks:
        run.validate(frame, make_suite())
    return Quality(day, run.results, run.publish(settings))


def validate_archive(day: dt.date, settings: Settings) -> Quality:
    from storage.archive import skipped_reader, skipped_within
    from storage.cassandra import connect
    from spark_runtime.session import build_session

    spark = build_session("viewcount-quality", settings, short_lived=True)
    records = frames.window_records(spark, settings, day)
    session = connect(settings)
    try:
        read = skipped_reader(session, settings.views_topic)
        offsets = frames.offsets_per_partition(
            records, lambda partition, first, last: skipped_within(read(partition, first, last), first, last),
            frames.archived_elsewhere(spark, settings, session, day))
    finally:
        session.cluster.shutdown()
    return _run(day, "archive", settings, [(records, suites.archive_records), (offsets, suites.archive_offsets)])


def validate_batch(day: dt.date, settings: Settings, max_restamped_share: float) -> Quality:
    """``max_restamped_share``: VIEWCOUNT_RECONCILE_MAX_RESTAMPED_SHARE (``ReconcileKnobs``)."""
    from spark_runtime.session import build_session

    spark = build_session("viewcount-quality", settings, short_lived=True)
    profile, totals = frames.batch_frames(spark, settings, day)
    return _run(day, "batch", settings, [(profile, suites.batch_counts),
                                         (totals, functools.partial(suites.batch_totals, max_restamped_share))])


def validate_stored_reconciliation(day: dt.date, settings: Settings) -> Quality:
    """The reconciliation summary stored for D (``viewcount reconcile`` writes it)."""
    from storage.cassandra import connect
    from storage.reconciliations import read_summary

    session = connect(settings)
    try:
        summary = read_summary(session, day)
    finally:
        session.cluster.shutdown()
    if summary is None:
        raise UserError(f"no reconciliation of {day}: run `viewcount reconcile --date {day}` first")
    return validate_reconciliation(day, summary, settings)


def validate_reconciliation(day: dt.date, summary: dict, settings: Settings) -> Quality:
    divergences, figures = frames.reconciliation_frames(summary)
    return _run(day, "reconciliation", settings, [(divergences, suites.reconciliation),
                                (figures, suites.reconciliation_summary)])
