"""Day D recomputed from archived Kafka records with the speed layer's counting rules.

Three steps, all built from ``counting``:

- ``tally_archive``: records and offsets per Kafka partition, from the narrow Kafka
  coordinates only (Parquet reads no value bytes), to check the files against
  archive_hours before anything costly runs;
- ``events_in_window``: ``parse_archived_records`` on the arrivals in [start, cutoff),
  each with its own Kafka timestamp; the caller caches the result, since both the counts
  and the statistics read it (cheaper than parsing twice, and than ``observe``, which
  measured at twice the CPU of the whole count);
- ``count_day``: the events of D (``counting.day.falls_in_day``) through the speed
  layer's own ``count_views_per_minute`` (valid, each view once, per minute). On a static
  DataFrame Spark ignores its watermark, so dedupe spans the whole day.

The steps only a batch may take (sort, limit) are here, named for what they give:
``top_videos_by_views``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from counting.day import (
    arrived_before_window, arrived_in_window, arrived_past_cutoff, countable_for_day, falls_in_day)
from counting.events import parse_archived_records
from counting.reasons import REASONS
from counting.views import count_views_per_minute, events_in_several_cells
from storage.batch_results import BatchStats

from counting.window import BatchWindow

TOP_VIDEOS = 1_000
# The arrivals after the cutoff the batch looks at, to report the views of D it leaves out:
# the first hour, as archived when the batch runs (the nightly runs soon after the cutoff).
PAST_CUTOFF_SPAN = dt.timedelta(hours=1)
RESTAMPED_SAMPLE = 20  # re-stamped event ids kept with a version, for the report


@dataclass(frozen=True)
class ArchiveTallies:
    """What the archive files of the window's hours hold."""

    by_partition: dict[int, tuple[int, int, int]]  # Kafka partition: (records, first, last offset)
    before_window: int  # records of the first hour that arrived before the window starts
    past_cutoff: int  # records of the last hour that arrived at or after the cutoff

    @property
    def records(self) -> int:
        return sum(records for records, _, _ in self.by_partition.values())


def tally_archive(records: DataFrame, window: BatchWindow) -> ArchiveTallies:
    """Records and offsets per Kafka partition; only the Kafka coordinates are read."""
    arrival = F.col("kafka_timestamp")
    rows = records.groupBy("partition").agg(
        F.count(F.lit(1)).alias("records"),
        F.min("offset").alias("first"),
        F.max("offset").alias("last"),
        F.count_if(arrived_before_window(window, arrival)).alias("before_window"),
        F.count_if(arrived_past_cutoff(window, arrival)).alias("past_cutoff"),
    ).collect()
    return ArchiveTallies(
        by_partition={row.partition: (row.records, row.first, row.last) for row in rows},
        before_window=sum(row.before_window for row in rows),
        past_cutoff=sum(row.past_cutoff for row in rows),
    )


def events_in_window(records: DataFrame, window: BatchWindow) -> DataFrame:
    """Parsed events (video_id, event_id, event_time, reason) of the window's arrivals."""
    return (
        records.filter(arrived_in_window(window, F.col("kafka_timestamp")))
        .transform(parse_archived_records())
        .select("video_id", "event_id", "event_time", "reason")
    )


def past_cutoff_events(records: DataFrame, window: BatchWindow, span: dt.timedelta = PAST_CUTOFF_SPAN) -> int:
    """Valid events of D among the records that arrived in [cutoff, cutoff + span): views
    the day's rule leaves out of its count (before dedupe, like ``other_days``)."""
    arrival = F.col("kafka_timestamp")
    return (
        records.filter(arrived_past_cutoff(window, arrival) & (arrival < F.lit(window.cutoff + span)))
        .transform(parse_archived_records())
        .transform(countable_for_day(window))
        .count()
    )


def count_day(window: BatchWindow) -> Callable[[DataFrame], DataFrame]:
    """views(video, minute) for the minutes of D: ``events.transform(count_day(window))``."""

    def count(events: DataFrame) -> DataFrame:
        return events.filter(falls_in_day(window)).transform(count_views_per_minute())

    return count


def day_stats(events: DataFrame, counts: DataFrame, window: BatchWindow, past_cutoff: int) -> BatchStats:
    """The batch's statistics: one aggregate over the events, one over the counts;
    ``past_cutoff`` from ``past_cutoff_events``."""
    is_valid = F.col("reason").isNull()
    read = events.agg(
        F.count(F.lit(1)).alias("events_read"),
        F.count_if(is_valid & ~falls_in_day(window)).alias("other_days"),
        F.count_if(is_valid & falls_in_day(window)).alias("valid_in_day"),
        *[F.count_if(F.col("reason") == reason).alias(reason) for reason in REASONS],
    ).first()
    totals = counts.agg(
        F.count(F.lit(1)).alias("cells"),
        F.coalesce(F.sum("views"), F.lit(0)).alias("views"),
        F.count_distinct("video_id").alias("videos"),
    ).first()
    restamped, extra_views, sample = restamped_retries(events, window)
    return BatchStats(
        events_read=read.events_read,
        invalid={reason: read[reason] for reason in REASONS},
        duplicates_removed=read.valid_in_day - totals.views,
        past_cutoff=past_cutoff,
        other_days=read.other_days,
        cells=totals.cells,
        total_views=totals.views,
        videos=totals.videos,
        restamped_events=restamped,
        restamped_extra_views=extra_views,
        restamped_sample=sample,
    )


def restamped_retries(events: DataFrame, window: BatchWindow) -> tuple[int, int, list[str]]:
    """Event ids of D counted in more than one minute cell (``events_in_several_cells``):
    how many, the views they add beyond one per event id, and the ``RESTAMPED_SAMPLE``
    counted in the most cells, as "video_id/event_id: N cells"."""
    # Kept for its two reads (the totals, the sample): one shuffle of the day's events, not two.
    several = events.transform(countable_for_day(window)).transform(events_in_several_cells).persist()
    try:
        totals = several.agg(F.count(F.lit(1)).alias("events"),
                             F.coalesce(F.sum(F.col("cells") - 1), F.lit(0)).alias("extra_views")).first()
        sample = several.orderBy(F.col("cells").desc(), "video_id", "event_id").limit(RESTAMPED_SAMPLE).collect()
    finally:
        several.unpersist()
    return totals.events, totals.extra_views, [f"{row.video_id}/{row.event_id}: {row.cells} cells" for row in sample]


def daily_totals(counts: DataFrame) -> DataFrame:
    """Views per video over the day: (video_id, views)."""
    return counts.groupBy("video_id").agg(F.sum("views").alias("views"))


def top_videos_by_views(counts: DataFrame, limit: int = TOP_VIDEOS) -> list[tuple[int, str, int]]:
    """(rank, video_id, views) of the day's most viewed videos; ties go to the smaller video_id."""
    rows = (
        daily_totals(counts)
        .orderBy(F.col("views").desc(), F.col("video_id").asc())
        .limit(limit)
        .collect()
    )
    return [(rank, row.video_id, row.views) for rank, row in enumerate(rows, start=1)]
