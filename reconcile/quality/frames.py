"""The DataFrames the suites run on, read from the archive, the batch tables and the
reconciliation summary of day D."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from storage.errors import UserError
from storage.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

CAUSES = ("late", "duplicate", "missing_in_speed", "missing_in_archive", "other")


def window_records(spark: "SparkSession", settings: Settings, day: dt.date) -> "DataFrame":
    """The archived records that arrived in D's window: what the batch of D reads."""
    from pyspark.sql import functions as F

    from counting.window import BatchWindow
    from storage.archive import archive_path, existing_hour_paths, read_archive

    window, root = BatchWindow(day), archive_path(settings)
    hours = window.hours()
    paths = existing_hour_paths(spark, root, hours)
    arrival = F.col("kafka_timestamp")
    return (read_archive(spark, root, [paths[hour] for hour in hours if hour in paths])
            .filter((arrival >= F.lit(window.start)) & (arrival < F.lit(window.cutoff))))


def offsets_per_partition(records: "DataFrame") -> "DataFrame":
    """One row per (topic, Kafka partition): records, distinct offsets, last - first + 1."""
    from pyspark.sql import functions as F

    return records.groupBy("topic", "partition").agg(
        F.count(F.lit(1)).alias("records"),
        F.count_distinct("offset").alias("distinct_offsets"),
        (F.max("offset") - F.min("offset") + 1).alias("offset_span"),
    )


def distinct_valid_events(records: "DataFrame", day: dt.date) -> int:
    """Distinct (video, minute, event_id) of D's valid events, counted straight from the
    records with the counting rules (not through the batch's dedupe and aggregation)."""
    from pyspark.sql import functions as F

    from counting.events import parse_events, valid_events
    from counting.event_time import event_minute
    from counting.views import DEDUPE_KEY

    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    in_day = (F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(start + dt.timedelta(days=1)))
    events = (records.select("topic", "partition", "offset", F.col("kafka_timestamp").alias("timestamp"),
                             "key", "value")
              .transform(parse_events()).transform(valid_events).filter(in_day)
              .withColumn("minute", event_minute(F.col("event_time"))))
    return events.agg(F.count_distinct(*DEDUPE_KEY).alias("events")).first().events


def batch_frames(spark: "SparkSession", settings: Settings, day: dt.date) -> tuple["DataFrame", "DataFrame"]:
    """The newest complete version's minute counts, and one row of its totals."""
    from pyspark.sql import functions as F

    from storage.batch_results import COMPLETE, read_versions
    from storage.cassandra import connect

    session = connect(settings)
    try:
        complete = [version for version in read_versions(session, day) if version.status == COMPLETE]
    finally:
        session.cluster.shutdown()
    if not complete:
        raise UserError(f"no complete batch version of {day}: run `viewcount batch --date {day}` first")
    newest = max(complete, key=lambda version: version.version)
    counts = spark.read.parquet(newest.parquet_uri)
    total = counts.agg(F.coalesce(F.sum("views"), F.lit(0)).alias("total")).first().total
    recount = distinct_valid_events(window_records(spark, settings, day), day)
    totals = spark.createDataFrame(
        [(newest.version, int(total), int(newest.total_views or 0), int(recount))],
        "version int, total_views long, recorded_total_views long, distinct_valid_events long")
    return counts.select("video_id", "minute", "views"), totals


def reconciliation_frames(summary: dict) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    import pandas as pd

    divergences = pd.DataFrame(summary.get("divergences") or [],
                               columns=["video_id", "minute", "speed", "batch", "delta", "cause", "billable"])
    divergences["speed_minus_batch"] = divergences["speed"] - divergences["batch"]
    causes = summary.get("causes") or {}
    figures = pd.DataFrame([{
        "status": summary["status"],
        "cells_compared": summary["cells_compared"],
        "cells_divergent": summary["cells_divergent"],
        "causes_total": sum(int(causes.get(cause, 0)) for cause in CAUSES),
        "money_at_risk": float(summary["money_at_risk"]),
        "abs_delta_views": summary["abs_delta_views"],
        "abs_total_difference": abs(summary["views_speed"] - summary["views_batch"]),
    }])
    return divergences, figures
