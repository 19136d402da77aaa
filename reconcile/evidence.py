"""Event-level evidence for day D: every occurrence of every countable event, with its
Kafka coordinates, from the archive and from Kafka itself where the archive has gaps.

An occurrence is one Kafka record that ``counting`` accepts (``parse_events`` on its
Kafka timestamp, ``valid_events``), whose event_time falls in D and which arrived inside
the batch's window: exactly the records the batch counts (before dedupe). The archive
rows of the window's hours give most of them; the offsets the archive lacks
(``reconcile.completeness``) are read back from Kafka with Spark's Kafka batch source,
per partition from the first to the last missing offset, and kept only where they fall
in a gap. ``in_archive`` tells the two apart.
"""

from __future__ import annotations

import functools
import json
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from counting.day import arrived_in_window, countable_for_day
from counting.event_time import event_minute
from counting.events import parse_events
from storage.archive import archive_schema, read_window
from storage.kafka_config import spark_options
from storage.settings import Settings

from reconcile.completeness import Gap
from counting.window import BatchWindow as Window

OCCURRENCE_COLUMNS = ("video_id", "minute", "event_id", "partition", "offset", "event_time_us", "in_archive")


def _in_gap(gaps: list[Gap]) -> Column:
    condition = F.lit(False)
    for gap in gaps:
        condition = condition | ((F.col("partition") == gap.partition)
                                 & F.col("offset").between(gap.first_offset, gap.last_offset))
    return condition


def gap_records(spark: SparkSession, settings: Settings, gaps: list[Gap]) -> DataFrame:
    """The Kafka records at the gaps' offsets (archive_schema()), read with the batch source."""
    if not gaps:
        return spark.createDataFrame([], archive_schema())
    topic, spans = settings.views_topic, {}
    for gap in gaps:
        first, end = spans.get(gap.partition, (gap.first_offset, gap.last_offset + 1))
        spans[gap.partition] = (min(first, gap.first_offset), max(end, gap.last_offset + 1))
    records = (
        spark.read.format("kafka")
        .options(**spark_options(settings))
        .option("assign", json.dumps({topic: sorted(spans)}))
        .option("startingOffsets", json.dumps({topic: {str(p): s[0] for p, s in spans.items()}}))
        .option("endingOffsets", json.dumps({topic: {str(p): s[1] for p, s in spans.items()}}))
        # Offsets Kafka no longer holds (retention) are skipped, not fatal: the cells they
        # would explain then have no proof and are classified `other`.
        .option("failOnDataLoss", "false")
        .load()
    )
    return records.select("topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp"),
                          "key", "value").filter(_in_gap(gaps))


def _countable(records: DataFrame, window: Window, in_archive: bool) -> DataFrame:
    arrival = F.col("kafka_timestamp")
    return (
        records.filter(arrived_in_window(window, arrival))
        .select("topic", "partition", "offset", arrival.alias("timestamp"), "key", "value")
        .transform(parse_events())
        .transform(countable_for_day(window))
        .select("video_id", event_minute(F.col("event_time")).alias("minute"), "event_id", "partition",
                "offset", F.unix_micros("event_time").alias("event_time_us"), F.lit(in_archive).alias("in_archive"))
    )


# Past this many videos the pre-filter's condition costs more than the parse it saves.
MAX_NAMED_VIDEOS = 200


def naming_any_of(videos: list[str]) -> Column | None:
    """True for every record whose value could be a view of one of ``videos``: its JSON
    text holds the id literally or, written with escapes, a backslash. A superset of their
    occurrences, cheap to test before ``parse_events``; None when there are too many."""
    if not videos or len(videos) > MAX_NAMED_VIDEOS:
        return None
    text = F.col("value").cast("string")
    condition = text.contains("\\")
    for video in videos:
        condition = condition | text.contains(video)
    return condition


def occurrences(archived: DataFrame, from_kafka: DataFrame | None, window: Window,
                videos: list[str] | None = None) -> DataFrame:
    """OCCURRENCE_COLUMNS of every countable record of day D in the window (``from_kafka``:
    records read back at the archive's gaps, None when it has none). With ``videos``, every
    occurrence of those videos and perhaps a few others: records that cannot name one of
    them are not parsed."""
    sources = [(archived, True)] + ([(from_kafka, False)] if from_kafka is not None else [])
    named = naming_any_of(videos or [])
    frames = [_countable(records if named is None else records.filter(named), window, in_archive)
              for records, in_archive in sources]
    return functools.reduce(DataFrame.unionByName, frames)
