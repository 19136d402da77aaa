"""Archive vs Kafka: per partition, which offsets of the batch's arrival window are not in
the archive files.

Kafka's offsets for the window are asked of Kafka itself (``offsets_for_times``: the first
offset stamped at or after the window's start, and at or after its cutoff), so the check
does not trust the archiver's own bookkeeping. The archived offsets are those of the
archive files of the window's hours, arrival inside the window. Per partition a cheap
aggregate (count, min, max) proves most partitions complete; only a partition whose
numbers do not add up has its offsets walked to list the gaps. The ``archive_hours`` rows
are reported beside them, since a file deleted after the archiver wrote it shows only here.

A hole in the archived offsets is a gap only where Kafka holds a committed record:
``narrowed_to_records`` reads the holes back from Kafka (read committed) and keeps the
offsets a record is at, so a transactional producer's markers and aborted records, which
no reader receives, are no gap. Offsets Kafka no longer holds (retention) stay gaps: their
absence proves nothing.

Kafka timestamps need not grow with offsets: a record stamped outside the window but
appended inside its offset range (a producer clock behind, a retry appended late) is filed
under another day's hours, so a hole is a gap only where the record Kafka holds there is
stamped inside the window (``reconcile.pipeline``). Records stamped inside the window but
appended past its range are in the window's hours, and a new version of a promoted day
counts them (restatement).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from settings.environment import Settings

from counting.window import BatchWindow as ArrivalWindow

if TYPE_CHECKING:
    from cassandra.cluster import Session


@dataclass(frozen=True)
class Gap:
    """Offsets first..last (inclusive) of a partition that Kafka has and the archive lacks;
    ``skipped`` of them hold no record a reader gets (transaction markers, aborted records)."""

    partition: int
    first_offset: int
    last_offset: int
    skipped: int = 0

    @property
    def records(self) -> int:
        return self.last_offset - self.first_offset + 1 - self.skipped


@dataclass
class PartitionCompleteness:
    partition: int
    kafka_first: int  # first offset of the window
    kafka_end: int  # one past its last offset
    archived: int  # distinct offsets of the window in the archive files
    archive_hours_records: int  # what archive_hours says the archiver wrote in the window's hours
    gaps: list[Gap] = field(default_factory=list)

    def as_dict(self) -> dict:
        values = asdict(self)
        values["gaps"] = [gap_dict(gap) for gap in self.gaps]
        return values


def gap_dict(gap: Gap) -> dict:
    return {"partition": gap.partition, "first_offset": gap.first_offset, "last_offset": gap.last_offset,
            "records": gap.records}


def kafka_offsets_at(settings: Settings, *instants: dt.datetime) -> list[dict[int, int]]:
    """Per instant, per partition of the views topic: the first offset Kafka stamped at or
    after it (the partition's end offset when none is)."""
    from confluent_kafka import Consumer, TopicPartition

    from storage.kafka_config import client_config

    topic = settings.views_topic
    consumer = Consumer(client_config(settings, **{"group.id": "viewcount-reconcile", "enable.auto.commit": False}))
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)

        def offsets_at(instant: dt.datetime) -> dict[int, int]:
            millis = int(instant.timestamp() * 1000)
            found = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in partitions], timeout=10)
            # -1: no record stamped that late, so the window ends at the partition's end.
            return {tp.partition: tp.offset if tp.offset >= 0 else consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=10)[1] for tp in found}

        return [offsets_at(instant) for instant in instants]
    finally:
        consumer.close()


def kafka_window_offsets(settings: Settings, window: ArrivalWindow) -> dict[int, tuple[int, int]]:
    """[first, end) offsets per partition of the records Kafka stamped inside the window."""
    starts, ends = kafka_offsets_at(settings, window.start, window.cutoff)
    return {p: (starts[p], ends[p]) for p in starts}


def archive_hours_records(session: "Session", topic: str, window: ArrivalWindow) -> dict[int, int]:
    """Records per partition that archive_hours lists for the window's hours."""
    from storage.archive import offsets_by_partition, read_hours

    hours = set(window.hours())
    rows = read_hours(session, topic, sorted({date for date, _ in hours}))
    spans = offsets_by_partition(row for row in rows if (row.arrival_date, row.arrival_hour) in hours)
    return {partition: records for partition, (_, _, records) in spans.items()}


def _walk_partition(archived: DataFrame, partition: int, first: int, end: int) -> tuple[list[Gap], int]:
    """The holes in [first, end) of one partition's archived offsets, and how many distinct
    offsets of that range are archived."""
    offsets = (archived.filter((F.col("partition") == partition) & F.col("offset").between(first, end - 1))
               .select("partition", "offset").distinct().persist())
    try:
        archived_count, last = offsets.agg(F.count(F.lit(1)), F.max("offset")).first()
        after_previous = offsets.withColumn("previous", F.lag("offset").over(
            Window.partitionBy("partition").orderBy("offset")))
        jumps = after_previous.filter(F.col("previous").isNull() | (F.col("offset") - F.col("previous") > 1))
        gaps = []
        for row in sorted(jumps.collect(), key=lambda row: row.offset):
            previous = first - 1 if row.previous is None else row.previous
            if row.offset > previous + 1:
                gaps.append(Gap(partition, previous + 1, row.offset - 1))
        last = first - 1 if last is None else last
        if last < end - 1:
            gaps.append(Gap(partition, last + 1, end - 1))
        return gaps, archived_count
    finally:
        offsets.unpersist()


def check_archive(archived: DataFrame, kafka: dict[int, tuple[int, int]],
                  hours_records: dict[int, int]) -> list[PartitionCompleteness]:
    """Per partition, the window's archived offsets against Kafka's; ``archived`` holds
    (partition, offset) of the archive rows that arrived inside the window."""
    # Distinct offsets, not rows: a repeated offset must not make up for a missing one.
    stats = {row.partition: row for row in archived.groupBy("partition").agg(
        F.count_distinct("offset").alias("rows"), F.min("offset").alias("first"),
        F.max("offset").alias("last")).collect()}
    result = []
    for partition, (first, end) in sorted(kafka.items()):
        row = stats.get(partition)
        rows = row.rows if row else 0
        complete = rows == end - first and (rows == 0 or (row.first, row.last) == (first, end - 1))
        gaps, archived_count = ([], rows) if complete else _walk_partition(archived, partition, first, end)
        result.append(PartitionCompleteness(partition, first, end, archived_count,
                                            hours_records.get(partition, 0), gaps))
    return result


def narrowed_to_records(gaps: list[Gap], found: DataFrame, earliest: dict[int, int]) -> list[Gap]:
    """The gaps where Kafka holds committed records. ``found`` holds (partition, offset) of
    the records Kafka gave for the gaps' offsets (read committed); ``earliest`` is each
    partition's earliest offset. A gap's offsets from the earliest on become the span of
    the records found there (none: no gap); offsets before it (gone with retention) stay."""
    if not gaps:
        return []
    spark = found.sparkSession
    frame = spark.createDataFrame([(g.partition, g.first_offset, g.last_offset) for g in gaps],
                                  "gap_partition int, gap_first long, gap_last long")
    inside = (F.col("partition") == F.col("gap_partition")) & F.col("offset").between(F.col("gap_first"),
                                                                                       F.col("gap_last"))
    spans = {(row.gap_partition, row.gap_first): row for row in found.select("partition", "offset").join(
        F.broadcast(frame), on=inside).groupBy("gap_partition", "gap_first").agg(
        F.min("offset").alias("first"), F.max("offset").alias("last"), F.count(F.lit(1)).alias("records")).collect()}
    narrowed = []
    for gap in gaps:
        held_from = earliest.get(gap.partition, 0)
        if gap.first_offset < held_from:
            narrowed.append(Gap(gap.partition, gap.first_offset, min(gap.last_offset, held_from - 1)))
        span = spans.get((gap.partition, gap.first_offset))
        if span is not None:
            narrowed.append(Gap(gap.partition, span.first, span.last, span.last - span.first + 1 - span.records))
    return narrowed
