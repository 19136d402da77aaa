"""Day D recomputed from archived Kafka records with the speed layer's counting rules.

``count_day`` is the whole computation: the window's arrivals, ``parse_events`` on each
record's Kafka timestamp, ``valid_events``, the minutes of D, ``drop_duplicate_events``
over the whole day and ``count_per_minute``, all from ``counting``. What a report needs
about the input (records per Kafka partition, invalid per reason, ...) is gathered by
``observe`` while that one pass runs, so nothing is read twice. The steps only a batch
may take (sort, limit) are here, named for what they give: ``top_videos_by_views``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from counting.events import parse_events, valid_events
from counting.reasons import REASONS
from counting.views import count_per_minute, drop_duplicate_events
from storage.batch_results import BatchStats

from batch_layer.window import BatchWindow, Hour

# The archive columns counting needs (storage.archive writes these and more).
ARCHIVE_SCHEMA = T.StructType([
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()),
    T.StructField("kafka_timestamp", T.TimestampType()),
    T.StructField("key", T.BinaryType()),
    T.StructField("value", T.BinaryType()),
])
TOP_VIDEOS = 1_000


def existing_hour_paths(spark: SparkSession, root: str, hours: list[Hour]) -> dict[Hour, str]:
    """The archive folders of these hours that exist (an hour without arrivals has none).

    One listing per arrival date through Hadoop's FileSystem, which serves s3a:// and
    local paths alike."""
    jvm, conf = spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()
    found = {}
    for date in sorted({date for date, _ in hours}):
        date_path = jvm.org.apache.hadoop.fs.Path(f"{root}/arrival_date={date}")
        filesystem = date_path.getFileSystem(conf)
        if not filesystem.exists(date_path):
            continue
        names = {status.getPath().getName() for status in filesystem.listStatus(date_path)}
        for hour_date, hour in hours:
            if hour_date == date and f"arrival_hour={hour}" in names:
                found[(date, hour)] = f"{root}/arrival_date={date}/arrival_hour={hour}"
    return found


def read_archive(spark: SparkSession, root: str, paths: list[str]) -> DataFrame:
    """The archived records under these hour folders (every batch_id in them)."""
    if not paths:
        return spark.createDataFrame([], ARCHIVE_SCHEMA)
    return spark.read.schema(ARCHIVE_SCHEMA).option("basePath", root).parquet(*paths).select(*ARCHIVE_SCHEMA.names)


@dataclass(frozen=True)
class Observed:
    """Metrics gathered by ``observe`` on ``rows`` while another action runs."""

    observation: Observation
    rows: DataFrame
    metrics: tuple[Column, ...]

    @cached_property
    def values(self) -> dict:
        """The metrics, once an action on a descendant of ``rows`` has run.

        When adaptive execution finds a shuffle empty it replaces the rest of the plan,
        and the metrics observed below it are lost with it (a day whose every record is
        invalid, say). Only then they are computed again, by their own pass over ``rows``.
        """
        from py4j.protocol import Py4JJavaError

        try:
            return self.observation.get
        except Py4JJavaError:
            return self.rows.agg(*self.metrics).first().asDict()

    def observe(self) -> DataFrame:
        return self.rows.observe(self.observation, *self.metrics)


@dataclass(frozen=True)
class DayCounts:
    """views(video, minute) of day D, and what was observed while computing them."""

    counts: DataFrame  # video_id, minute, views
    partitions: tuple[int, ...]
    archive: Observed  # on the archive rows read
    parsed: Observed  # on the parsed events that arrived in the window

    def records_by_partition(self) -> dict[int, tuple[int, int | None, int | None]]:
        """(records, first offset, last offset) read per Kafka partition named up front."""
        metrics = self.archive.values
        return {p: (metrics[f"records_{p}"], metrics[f"first_{p}"], metrics[f"last_{p}"]) for p in self.partitions}

    def records_read(self) -> int:
        return self.archive.values["records"]


def _archive_metrics(window: BatchWindow, partitions: tuple[int, ...]) -> list[Column]:
    partition, offset, arrival = F.col("partition"), F.col("offset"), F.col("kafka_timestamp")
    per_partition = []
    for p in partitions:
        per_partition += [
            F.count_if(partition == p).alias(f"records_{p}"),
            F.min(F.when(partition == p, offset)).alias(f"first_{p}"),
            F.max(F.when(partition == p, offset)).alias(f"last_{p}"),
        ]
    return [
        F.count(F.lit(1)).alias("records"),
        F.count_if(arrival < F.lit(window.start)).alias("before_window"),
        F.count_if(arrival >= F.lit(window.cutoff)).alias("past_cutoff"),
        *per_partition,
    ]


def _is_in_day(window: BatchWindow) -> Column:
    return (F.col("event_time") >= F.lit(window.day_start)) & (F.col("event_time") < F.lit(window.day_end))


def _parsed_metrics(window: BatchWindow) -> list[Column]:
    is_valid = F.col("reason").isNull()
    return [
        F.count(F.lit(1)).alias("events_read"),
        F.count_if(is_valid & ~_is_in_day(window)).alias("other_days"),
        F.count_if(is_valid & _is_in_day(window)).alias("valid_in_day"),
        *[F.count_if(F.col("reason") == reason).alias(reason) for reason in REASONS],
    ]


def count_day(records: DataFrame, window: BatchWindow, partitions: tuple[int, ...] = ()) -> DayCounts:
    """views(video, minute) for the minutes of D from archive rows (ARCHIVE_SCHEMA).

    Counts the records that arrived in [window.start, window.cutoff). ``partitions``
    names the Kafka partitions whose records are tallied one by one for the archive check.
    """
    arrival = F.col("kafka_timestamp")
    is_in_window = (arrival >= F.lit(window.start)) & (arrival < F.lit(window.cutoff))
    archive = Observed(Observation("archive"), records, tuple(_archive_metrics(window, partitions)))
    parsed = Observed(
        Observation("parsed"),
        archive.observe()
        .filter(is_in_window)
        .select("topic", "partition", "offset", arrival.alias("timestamp"), "key", "value")
        .transform(parse_events()),
        tuple(_parsed_metrics(window)),
    )
    counts = (
        parsed.observe()
        .transform(valid_events)
        .filter(_is_in_day(window))
        .transform(drop_duplicate_events)
        .transform(count_per_minute)
    )
    return DayCounts(counts, tuple(partitions), archive, parsed)


def day_stats(day_counts: DayCounts) -> BatchStats:
    """The batch's statistics; ``day_counts.counts`` must have been computed (persisted)."""
    totals = day_counts.counts.agg(
        F.count(F.lit(1)).alias("cells"),
        F.coalesce(F.sum("views"), F.lit(0)).alias("views"),
        F.count_distinct("video_id").alias("videos"),
    ).first()
    archive, parsed = day_counts.archive.values, day_counts.parsed.values
    return BatchStats(
        events_read=parsed["events_read"],
        invalid={reason: parsed[reason] for reason in REASONS},
        duplicates_removed=parsed["valid_in_day"] - totals.views,
        past_cutoff=archive["past_cutoff"],
        other_days=parsed["other_days"],
        cells=totals.cells,
        total_views=totals.views,
        videos=totals.videos,
    )


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
