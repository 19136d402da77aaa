"""Restatement of closed days: which promoted days received records after their final
version read them, and what a new version changes per video.

A record stamped inside a promoted day's window can reach the log after the day's batch
read the window: a producer retrying through a leader failover keeps its original
timestamp, a transaction open across the cutoff commits later, a producer's clock runs
behind. The archiver files it under the window's hours all the same, beyond the offsets
the final version read. The nightly run asks ``stale_days`` for every promoted day of the
restatement horizon that holds such records, recomputes each as a new version (the
batch, with the final version's cutoff), reconciles and gates it as usual, and promotes
it; the promotion writes the restatement record (``batch_layer.promotion``).

``version_deltas`` runs inside the batch job: per video, the day's total in the promoted
version and in the new one, where they differ, so the promotion can record the change
without Spark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from settings.environment import Settings

from batch_layer.completeness import Completeness, arrived_after
from counting.durations import duration_text
from counting.window import BatchWindow

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import DataFrame, SparkSession

    from storage.batch_results import BatchVersion


@dataclass(frozen=True)
class Stale:
    """A promoted day whose window received records its final version did not read."""

    day: dt.date
    final_version: int
    grace: dt.timedelta  # of the final version's window: the restated version keeps its cutoff
    lines: tuple[str, ...]

    @property
    def reason(self) -> str:
        return f"records arrived in the window after final version {self.final_version} read it: " + \
            "; ".join(self.lines)

    @property
    def grace_text(self) -> str:
        """The grace as ``viewcount batch --grace`` takes it."""
        return duration_text(self.grace)


def final_version(session: "Session", day: dt.date) -> "BatchVersion | None":
    """The promoted version of a day, None when the day is not promoted."""
    from storage.batch_results import read_promotion, read_versions

    promotion = read_promotion(session, day)
    if promotion is None:
        return None
    return next((v for v in read_versions(session, day) if v.version == promotion.version), None)


def late_lines(session: "Session", topic: str, final: "BatchVersion") -> list[str]:
    """What the window of ``final``'s day received beyond the offsets ``final`` read."""
    from storage.archive import read_hours

    window = BatchWindow.with_cutoff(final.day, final.cutoff)
    hours = set(window.hours())
    rows: dict[int, list] = {}
    for row in read_hours(session, topic, window.dates()):
        if (row.arrival_date, row.arrival_hour) in hours:
            rows.setdefault(row.kafka_partition, []).append(row)
    return arrived_after(Completeness(rows=rows), final)


def stale_days(session: "Session", settings: Settings, day: dt.date) -> list[Stale]:
    """Every promoted day of the ``settings.restatement_days`` + 1 before ``day`` (the
    night's own day, which its run promotes itself) whose window received records after
    its final version read it, oldest first. The extra day: the broker takes a record
    stamped up to that horizon plus a day back (``storage.topics``), so one that arrived
    on ``day`` can belong to the day before the horizon."""
    from storage.batch_results import read_promotions, read_versions

    days = [day - dt.timedelta(days=back) for back in range(settings.restatement_days + 1, 0, -1)]
    stale = []
    for earlier, promotion in sorted(read_promotions(session, days).items()):
        final = next((v for v in read_versions(session, earlier) if v.version == promotion.version), None)
        if final is None or final.cutoff is None:
            continue
        lines = late_lines(session, settings.views_topic, final)
        if lines:
            grace = BatchWindow.with_cutoff(earlier, final.cutoff).grace
            stale.append(Stale(earlier, final.version, grace, tuple(lines)))
    return stale


def version_deltas(spark: "SparkSession", promoted_parquet: str, counts: "DataFrame") -> list[tuple[str, int, int]]:
    """(video_id, views in the promoted version, views in ``counts``) of every video whose
    day total differs, from the promoted version's Parquet and the new counts."""
    from pyspark.sql import functions as F

    from batch_layer.recompute import daily_totals

    old = daily_totals(spark.read.parquet(promoted_parquet)).withColumnRenamed("views", "old_views")
    new = daily_totals(counts).withColumnRenamed("views", "new_views")
    both = old.join(new, "video_id", "full_outer").select(
        "video_id", F.coalesce("old_views", F.lit(0)).alias("old_views"),
        F.coalesce("new_views", F.lit(0)).alias("new_views"))
    return [(row.video_id, row.old_views, row.new_views)
            for row in both.where(F.col("old_views") != F.col("new_views")).collect()]


def find(day: dt.date, settings: Settings) -> list[Stale]:
    """``stale_days`` before ``day``, each put on record as a 'pending' restatement request
    (a day whose restatement failed before is pending again: it is retried)."""
    from storage.cassandra import connect
    from storage.restatements import PENDING, write_request

    session = connect(settings)
    try:
        stale = stale_days(session, settings, day)
        for each in stale:
            write_request(session, settings.views_topic, each.day, PENDING, each.reason,
                          served_version=each.final_version)
        return stale
    finally:
        session.cluster.shutdown()


def settle(day: dt.date, settings: Settings, status: str, reason: str, *, served_version: int | None,
           detail: str | None = None) -> None:
    """Move a day's restatement request to 'restated' or 'failed'."""
    from storage.cassandra import connect
    from storage.restatements import write_request

    session = connect(settings)
    try:
        write_request(session, settings.views_topic, day, status, reason, served_version=served_version,
                      detail=detail)
    finally:
        session.cluster.shutdown()
