"""Event-level evidence for day D: every occurrence of every countable event, with its
Kafka coordinates, from the archive and from Kafka itself where the archive has gaps.

An occurrence is one Kafka record that ``counting`` accepts (``parse_archived_records``,
``valid_events``), whose event_time falls in D and which arrived inside
the batch's window: exactly the records the batch counts (before dedupe). The archive
rows of the window's hours give most of them; the offsets the archive lacks
(``reconcile.completeness``) are read back from Kafka with Spark's Kafka batch source,
per partition from the first to the last missing offset, and kept only where they fall
in a gap. ``in_archive`` tells the two apart.

Views of D that arrived after the cutoff are not the batch's, but a speed layer catching
up across midnight may have counted them: where its log says it read past the window, the
records it read there (up to ``AFTER_CUTOFF_SPAN`` after the cutoff) are read back from
Kafka too, and their occurrences of D marked ``past_cutoff``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from counting.day import arrived_in_window, arrived_past_cutoff, countable_for_day
from counting.event_time import event_minute
from counting.events import parse_archived_records
from storage.archive import archive_schema
from storage.kafka_config import spark_reader_options
from settings.environment import Settings

from reconcile.completeness import Gap
from counting.window import BatchWindow as Window

OCCURRENCE_COLUMNS = ("video_id", "minute", "event_id", "partition", "offset", "event_time_us", "in_archive",
                      "past_cutoff")
# How long after the cutoff arrivals are searched for views of D the speed layer counted.
AFTER_CUTOFF_SPAN = dt.timedelta(hours=24)


def _in_gap(gaps: list[Gap]) -> Column:
    condition = F.lit(False)
    for gap in gaps:
        condition = condition | ((F.col("partition") == gap.partition)
                                 & F.col("offset").between(gap.first_offset, gap.last_offset))
    return condition


def kafka_records(spark: SparkSession, settings: Settings, spans: dict[int, tuple[int, int]]) -> DataFrame:
    """The views topic's records at [first, end) offsets per partition (archive_schema()),
    read with Spark's Kafka batch source."""
    topic = settings.views_topic
    records = (
        spark.read.format("kafka")
        .options(**spark_reader_options(settings))
        .option("assign", json.dumps({topic: sorted(spans)}))
        .option("startingOffsets", json.dumps({topic: {str(p): s[0] for p, s in spans.items()}}))
        .option("endingOffsets", json.dumps({topic: {str(p): s[1] for p, s in spans.items()}}))
        # Offsets Kafka no longer holds (retention) are skipped, not fatal: the cells they
        # would explain then have no proof and are classified `other`.
        .option("failOnDataLoss", "false")
        .load()
    )
    return records.select("topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp"), "key", "value")


def gap_records(spark: SparkSession, settings: Settings, gaps: list[Gap]) -> DataFrame:
    """The Kafka records at the gaps' offsets (archive_schema())."""
    if not gaps:
        return spark.createDataFrame([], archive_schema())
    spans = {}
    for gap in gaps:
        first, end = spans.get(gap.partition, (gap.first_offset, gap.last_offset + 1))
        spans[gap.partition] = (min(first, gap.first_offset), max(end, gap.last_offset + 1))
    return kafka_records(spark, settings, spans).filter(_in_gap(gaps))


def read_past_window(window_ends: dict[int, int], consumed_ends: dict[int, int],
                     span_ends: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Per partition, the offsets after the window that the speed layer read, up to
    ``AFTER_CUTOFF_SPAN`` after the cutoff: [window end, min(speed's end, span end)); only
    partitions where that is not empty."""
    spans = {p: (end, min(consumed_ends.get(p, end), span_ends.get(p, end))) for p, end in window_ends.items()}
    return {p: (first, end) for p, (first, end) in spans.items() if end > first}


def _countable(records: DataFrame, window: Window, arrived: Column, in_archive: bool, past_cutoff: bool) -> DataFrame:
    return (
        records.filter(arrived)
        .transform(parse_archived_records())
        .transform(countable_for_day(window))
        .select("video_id", event_minute(F.col("event_time")).alias("minute"), "event_id", "partition",
                "offset", F.unix_micros("event_time").alias("event_time_us"), F.lit(in_archive).alias("in_archive"),
                F.lit(past_cutoff).alias("past_cutoff"))
    )


# Past this many videos the pre-filter's condition costs more than the parse it saves.
MAX_NAMED_VIDEOS = 200


def naming_any_of(videos: list[str]) -> Column | None:
    """True for every record whose value could be a view of one of ``videos``: its JSON
    text holds the id literally or, written with escapes, a backslash. A superset of their
    occurrences, cheap to test before ``parse_archived_records``; None when there are too many."""
    if not videos or len(videos) > MAX_NAMED_VIDEOS:
        return None
    text = F.col("value").cast("string")
    condition = text.contains("\\")
    for video in videos:
        condition = condition | text.contains(video)
    return condition


def occurrences(archived: DataFrame, from_kafka: DataFrame | None, window: Window,
                videos: list[str] | None = None, after_cutoff: DataFrame | None = None) -> DataFrame:
    """OCCURRENCE_COLUMNS of every countable record of day D in the window (``from_kafka``:
    records read back at the archive's gaps, None when it has none) and, from
    ``after_cutoff`` (records read back past the window, or None), of those that arrived
    after the cutoff, within ``AFTER_CUTOFF_SPAN``. With ``videos``, every occurrence of
    those videos and perhaps a few others: records that cannot name one of them are not
    parsed."""
    arrival = F.col("kafka_timestamp")
    in_window = arrived_in_window(window, arrival)
    past = arrived_past_cutoff(window, arrival) & (arrival < F.lit(window.cutoff + AFTER_CUTOFF_SPAN))
    sources = [(archived, in_window, True, False)]
    sources += [(from_kafka, in_window, False, False)] if from_kafka is not None else []
    sources += [(after_cutoff, past, False, True)] if after_cutoff is not None else []
    named = naming_any_of(videos or [])
    frames = [_countable(records if named is None else records.filter(named), window, arrived, in_archive, past_cut)
              for records, arrived, in_archive, past_cut in sources]
    return functools.reduce(DataFrame.unionByName, frames)
