"""The DataFrames the suites run on, read from the archive, the batch tables and the
reconciliation summary of day D."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from settings.errors import UserError
from storage.reconciliations import CAUSES
from settings.environment import Settings

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from counting.window import BatchWindow


def money_well_formed(money: object) -> bool:
    """True for a money_at_risk of ISO 4217 codes, each with a finite decimal amount >= 0."""
    import re
    from decimal import Decimal, InvalidOperation

    if not isinstance(money, dict):
        return False
    try:
        amounts = [Decimal(amount) for amount in money.values() if isinstance(amount, str)]
    except InvalidOperation:
        return False
    return (len(amounts) == len(money) and all(re.fullmatch(r"[A-Z]{3}", code) for code in money)
            and all(amount.is_finite() and amount >= 0 for amount in amounts))


def window_records(spark: "SparkSession", settings: Settings, day: dt.date) -> "DataFrame":
    """The archived records that arrived in D's window: what the batch of D reads."""
    from counting.window import BatchWindow
    from storage.archive import archive_path, read_window

    return read_window(spark, archive_path(settings), BatchWindow(day))


def _no_skipped(partition: int, first: int, last: int) -> int:
    return 0


# How far either side of the window records stamped for other hours can lie (the
# restatement horizon's default plus the broker's extra day, as batch_layer.completeness).
ELSEWHERE_DAYS = 8


def archived_elsewhere(spark: "SparkSession", settings: Settings, session, day: dt.date):
    """``(partition, first, last) -> n``: the distinct offsets in [first, last] archived as
    records that did not arrive in D's window: stamped for another day's hours but appended
    inside the window's offset range (a producer clock behind, a retry through a failover,
    a transaction committed late), found through the archive_hours rows of the hours
    around the window and read from those hours' files, offsets only."""
    from pyspark.sql import functions as F

    from counting.day import arrived_in_window
    from counting.window import BatchWindow
    from storage.archive import archive_path, read_archive_hours, read_hours

    window = BatchWindow(day)
    dates = window.dates()
    first_date = dates[0] - dt.timedelta(days=ELSEWHERE_DAYS)
    around = [first_date + dt.timedelta(days=n) for n in range((dates[-1] - first_date).days + ELSEWHERE_DAYS + 1)]

    def count(partition: int, first: int, last: int) -> int:
        hours = sorted({(row.arrival_date, row.arrival_hour) for row in read_hours(session, settings.views_topic, around)
                        if row.kafka_partition == partition and row.first_offset <= last and row.last_offset >= first})
        if not hours:
            return 0
        records = read_archive_hours(spark, archive_path(settings), hours)
        return (records.filter((F.col("partition") == partition) & F.col("offset").between(first, last)
                               & ~arrived_in_window(window, F.col("kafka_timestamp")))
                .select("offset").distinct().count())

    return count


def offsets_per_partition(records: "DataFrame", skipped_in=_no_skipped, elsewhere_in=_no_skipped) -> "pd.DataFrame":
    """One row per (topic, Kafka partition) of the records, computed in one Spark pass and
    checked on the driver: records, distinct offsets, last - first + 1, the records whose
    offset or arrival time is missing, and the offsets in between that hold no record a
    reader gets (``skipped_in(partition, first, last)``: transaction markers and aborted
    records the archiver recorded), added up with the records in ``records_and_skipped``;
    where those do not fill the span, the offsets in between archived as records of other
    hours (``elsewhere_in``, e.g. ``archived_elsewhere``) are added too.
    A NULL topic or partition is a row of its own."""
    from pyspark.sql import functions as F

    frame = records.groupBy("topic", "partition").agg(
        F.count(F.lit(1)).alias("records"),
        F.count_distinct("offset").alias("distinct_offsets"),
        F.min("offset").alias("first_offset"),
        F.max("offset").alias("last_offset"),
        (F.max("offset") - F.min("offset") + 1).alias("offset_span"),
        F.count_if(F.col("offset").isNull() | F.col("kafka_timestamp").isNull()).alias("missing_coordinates"),
    ).toPandas()
    import pandas as pd

    frame["skipped_offsets"] = [
        skipped_in(int(partition), int(first), int(last)) if pd.notna([partition, first, last]).all() else 0
        for partition, first, last in zip(frame["partition"], frame["first_offset"], frame["last_offset"])]
    frame["records_and_skipped"] = frame["records"] + frame["skipped_offsets"]
    frame["elsewhere_offsets"] = [
        elsewhere_in(int(partition), int(first), int(last)) if filled < span and pd.notna([partition, first, last]).all()
        else 0
        for partition, first, last, filled, span in zip(frame["partition"], frame["first_offset"], frame["last_offset"],
                                                        frame["records_and_skipped"], frame["offset_span"])]
    frame["records_and_skipped"] = frame["records_and_skipped"] + frame["elsewhere_offsets"]
    return frame


def counts_profile(counts: "DataFrame") -> "pd.DataFrame":
    """One row over a version's minute counts, in one Spark pass: cells, distinct
    (video_id, minute) keys, cells with a missing field, the smallest count, the ids that
    are not well formed, and the total views."""
    from pyspark.sql import functions as F

    from counting.events import is_valid_video_id

    missing = F.col("video_id").isNull() | F.col("minute").isNull() | F.col("views").isNull()
    return counts.agg(
        F.count(F.lit(1)).alias("cells"),
        F.count_distinct("video_id", "minute").alias("distinct_cells"),
        F.count_if(missing).alias("missing_fields"),
        F.min("views").alias("min_views"),
        F.count_if(~is_valid_video_id(F.col("video_id"))).alias("malformed_video_ids"),
        F.coalesce(F.sum("views"), F.lit(0)).alias("total_views"),
    ).toPandas()


def distinct_valid_events(records: "DataFrame", window: "BatchWindow") -> int:
    """Distinct (video, minute, event_id) of the events that count for D
    (``counting.day.countable_for_day``), counted straight from the records (not through
    the batch's dedupe and aggregation)."""
    from pyspark.sql import functions as F

    from counting.day import countable_for_day
    from counting.events import parse_archived_records
    from counting.event_time import event_minute
    from counting.views import DEDUPE_KEY

    events = (records.transform(parse_archived_records()).transform(countable_for_day(window))
              .withColumn("minute", event_minute(F.col("event_time"))))
    return events.agg(F.count_distinct(*DEDUPE_KEY).alias("events")).first().events


def batch_frames(spark: "SparkSession", settings: Settings, day: dt.date) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """The newest complete version: the profile of its minute counts, and one row of its
    totals beside the distinct valid events recounted from the archive, and the share of
    its views that re-stamped retries add (from its statistics)."""
    import pandas as pd

    from counting.window import BatchWindow
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
    profile = counts_profile(spark.read.parquet(newest.parquet_uri))
    recount = distinct_valid_events(window_records(spark, settings, day), BatchWindow(day))
    total_views = int(profile["total_views"].iloc[0])
    totals = pd.DataFrame([{"version": newest.version, "total_views": total_views,
                            "recorded_total_views": int(newest.total_views or 0),
                            "distinct_valid_events": int(recount),
                            "restamped_share": (newest.restamped_extra_views or 0) / max(total_views, 1)}])
    return profile, totals


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
        "money_well_formed": money_well_formed(summary["money_at_risk"]),
        "abs_delta_views": summary["abs_delta_views"],
        "abs_total_difference": abs(summary["views_speed"] - summary["views_batch"]),
    }])
    return divergences, figures
