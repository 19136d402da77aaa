"""views(video, minute): distinct event_id among a video's valid events in that UTC minute.

The same transforms serve the streaming counter and the nightly batch. On a stream the
watermark is set on ``event_time`` AFTER ``valid_events`` (an invalid record with an absurd
event_time must not move it), so that dedupe and aggregation state is evicted.

Spark's watermark is the newest event time seen less the delay, so one valid record whose
event_time is ahead of the clock (a producer clock running fast: up to the broker's 5
minutes on its Kafka timestamp plus the rule's 5 minutes of future event time) would move
it up to the present, and on-time views arriving a few seconds after their event time would
be dropped as late for up to 10 minutes. ``count_views_per_minute(watermark_bound=...)``
takes a second watermark, and Spark keeps the lower of a query's watermarks; the counter's
is each batch's own start time (``speed_layer.watermark``), so its watermark is never
ahead of the batch's clock less the delay, whatever one record says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from counting.durations import DEFAULT_WATERMARK_DELAY, spark_interval
from counting.event_time import event_minute
from counting.events import valid_events

# Two valid events are the same view when they share all three.
DEDUPE_KEY = ("video_id", "minute", "event_id")


def drop_duplicate_events(events: DataFrame) -> DataFrame:
    """Keep one event per DEDUPE_KEY; adds the ``minute`` column.

    A stream uses dropDuplicatesWithinWatermark, whose state for a key lives until the
    watermark passes that key's first event_time plus the watermark delay.
    """
    with_minute = events.withColumn("minute", event_minute(F.col("event_time")))
    if events.isStreaming:
        return with_minute.dropDuplicatesWithinWatermark(list(DEDUPE_KEY))
    return with_minute.dropDuplicates(list(DEDUPE_KEY))


def count_per_minute(events: DataFrame) -> DataFrame:
    """Rows per (video_id, UTC minute of event_time) as ``views`` (long).

    Expects events that are already valid and deduplicated. Groups by a one-minute
    event-time window, not by a derived minute column, so that on a watermarked stream
    Spark can finalise and evict each minute's state.
    """
    return (
        events.groupBy(F.col("video_id"), F.window(F.col("event_time"), "1 minute"))
        .agg(F.count(F.lit(1)).alias("views"))
        .select(F.col("video_id"), F.col("window.start").alias("minute"), F.col("views"))
    )


def events_in_several_cells(events: DataFrame) -> DataFrame:
    """(video_id, event_id, cells) of every event id counted in more than one minute cell.

    A client retry that re-stamps its event_time into another minute counts once per minute
    it lands in (the dedupe key holds the minute), in both layers alike, so no divergence
    shows it; billing still wants to see clients whose retries are counted again. Expects
    the valid events of one day (``counting.day.countable_for_day``)."""
    return (
        events.withColumn("minute", event_minute(F.col("event_time")))
        .groupBy("video_id", "event_id")
        .agg(F.count_distinct("minute").alias("cells"))
        .filter(F.col("cells") > 1)
    )


def is_dropped_as_late(event_time_us: Column, late_watermark_ms: Column) -> Column:
    """True for an event a micro-batch drops as late: its event_time (epoch microseconds)
    at or behind the watermark that batch applied (the one the batch before it left, epoch
    milliseconds), compared in microseconds as Spark does. The first batch's watermark is
    0, so an event before 1970 is late even there."""
    return event_time_us <= late_watermark_ms * F.lit(1000)


def count_views_per_minute(
    watermark_delay: dt.timedelta = DEFAULT_WATERMARK_DELAY,
    watermark_bound: Callable[[DataFrame], DataFrame] | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """The whole definition from parsed events: valid only, each view once, per minute.

    ``parsed.transform(count_views_per_minute())`` on a stream or a static DataFrame
    (Spark ignores the watermark on a static one). The delay must be at least
    ``counting.durations.MIN_WATERMARK_DELAY``.
    On a stream, ``watermark_bound`` (given the watermarked valid events) returns a stream
    with no rows and their columns whose own watermark bounds theirs: Spark keeps the
    lower of a query's watermarks (the counter's is the batch's clock,
    ``speed_layer.watermark``; counting itself reads no clock).
    """

    def count(events: DataFrame) -> DataFrame:
        valid = events.transform(valid_events).withWatermark("event_time", spark_interval(watermark_delay))
        if watermark_bound is not None and valid.isStreaming:
            valid = valid.unionByName(watermark_bound(valid))
        return valid.transform(drop_duplicate_events).transform(count_per_minute)

    return count
