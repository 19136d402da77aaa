"""Day D of the speed table, frozen as Parquet, and the video catalog as a DataFrame.

The speed table keeps changing while a reconciliation runs (the counter is live), so the
comparison reads a snapshot taken once, written beside the report's inputs
(``s3a://<bucket>/[<prefix>/]reconcile/day=D/speed.parquet``): the comparison then runs on two
Parquet sets, and the numbers a report shows can be checked again later.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql import types as T

from settings.environment import Settings
from storage.catalog import CATALOG_SCAN
from storage.minute_counts import SPEED_SCAN
from storage.token_scan import scan_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CELL_SCHEMA = T.StructType([
    T.StructField("video_id", T.StringType(), False),
    T.StructField("minute_ms", T.LongType(), False),
    T.StructField("views", T.LongType(), False),
])
# Rates are validated to at most 6 decimal places on load (reconcile.catalog_command).
RATE_TYPE = T.DecimalType(18, 6)
CATALOG_SCHEMA = T.StructType([
    T.StructField("video_id", T.StringType(), False),
    T.StructField("billable", T.BooleanType(), True),
    T.StructField("rate_per_1000", RATE_TYPE, True),
    T.StructField("currency", T.StringType(), True),
])


def _epoch_millis(minute: dt.datetime) -> int:
    # The driver returns naive UTC datetimes; timestamp() would read them as local time.
    return int(minute.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def _cell_of_day(day_days_since_epoch: int, row) -> tuple | None:
    # Cassandra's date type comes back as cassandra.util.Date; days_from_epoch compares cheaply.
    if row.day.days_from_epoch != day_days_since_epoch:
        return None
    return row.video_id, _epoch_millis(row.minute), row.views if row.views is not None else 0


def _catalog_row(row) -> tuple:
    return row.video_id, row.billable, row.rate_per_1000, row.currency


def snapshot_speed(spark: "SparkSession", settings: Settings, day: dt.date, uri: str) -> str:
    """Write day D's speed cells (video_id, minute, views) as Parquet at ``uri``; returns it."""
    days = (day - dt.date(1970, 1, 1)).days
    cells = scan_table(spark, settings, SPEED_SCAN, partial(_cell_of_day, days), CELL_SCHEMA)
    (cells.select("video_id", F.timestamp_millis("minute_ms").alias("minute"), "views")
     .write.mode("overwrite").parquet(uri))
    return uri


def read_catalog(spark: "SparkSession", settings: Settings) -> "DataFrame":
    """video_id, billable, rate_per_1000, currency of every catalogued video."""
    return scan_table(spark, settings, CATALOG_SCAN, _catalog_row, CATALOG_SCHEMA, ranges=64)
