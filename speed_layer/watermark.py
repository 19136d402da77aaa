"""The counter's second watermark: each micro-batch's own start time less the delay.

``counting.views`` explains why: one valid record stamped ahead of the clock would move
Spark's watermark (the newest event time less the delay) to the present. Spark keeps the
lower of a query's watermarks (``WATERMARK_POLICY``), so a branch of the same records whose
event time is the batch's start bounds it. Counting reads no clock; this is the speed
layer's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from counting.durations import spark_interval

# The clock's rows never reach the count: no batch starts before this.
_NO_BATCH_STARTS_BEFORE = "1971-01-01 00:00:00"
# How Spark combines a query's watermarks; "min" is its default and what the bound relies
# on (a query keeps the policy it started with).
WATERMARK_POLICY = {"spark.sql.streaming.multipleWatermarkPolicy": "min"}


def batch_clock(records: DataFrame, watermark_delay: dt.timedelta) -> Callable[[DataFrame], DataFrame]:
    """For ``count_views_per_minute(watermark_bound=...)``: no rows, the columns of the
    events, and a watermark at the batch's start less the delay.

    ``records`` is the stream the events were parsed from, as read (no parsing: Spark
    prunes everything but the scan, so the cost is a second read of the batch's records).
    ``current_timestamp()`` in a micro-batch is the batch's start time, kept in the query's
    offset log, so a replayed batch sees the same. The filter comes after the watermark and
    reads its column, so Spark cannot move it below the watermark: every record passes
    through it."""

    def bound(events: DataFrame) -> DataFrame:
        clock = records.select(
            *[(F.current_timestamp() if field.name == "event_time" else F.lit(None)).cast(field.dataType)
              .alias(field.name) for field in events.schema.fields])
        return (clock.withWatermark("event_time", spark_interval(watermark_delay))
                .where(F.col("event_time") < F.lit(_NO_BATCH_STARTS_BEFORE).cast("timestamp")))

    return bound
