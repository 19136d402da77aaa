"""The raw archive on S3 and the records that prove it complete.

Layout: ``<root>/arrival_date=D/arrival_hour=H/batch_id=N/*.parquet``. Each archiver batch
writes its own ``batch_id`` partitions with dynamic partition overwrite, so a batch that
is replayed after a crash replaces exactly the files it wrote before: every Kafka record
is in the archive once. ``archive_hours`` holds, per arrival hour, Kafka partition and
batch, the first and last offset and the record count, written in the same batch; the
batch layer and the reconciler add them up to prove that no offset is missing.

Not every offset holds a record a reader gets: a transactional producer's commit and abort
markers, and its aborted records (readers read committed: ``storage.kafka_config``), take
offsets no reader receives. The archiver records those of each batch, as ranges, in
``archive_skipped_offsets``: the offsets in the batch's range [start, end) of a partition
that it did not receive. A range starts right after a received record or at the batch's
start, so the skipped offsets inside any [x, y] are those of the ranges starting there.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from settings.environment import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import DataFrame, SparkSession

    from counting.window import BatchWindow

PARTITION_COLUMNS = ("arrival_date", "arrival_hour", "batch_id")
# The archive columns counting needs (the archiver writes these and more), as
# (name, Spark SQL type); ``archive_schema()`` builds the StructType.
ARCHIVE_COLUMNS = (("topic", "string"), ("partition", "int"), ("offset", "bigint"),
                   ("kafka_timestamp", "timestamp"), ("key", "binary"), ("value", "binary"))


def archive_path(settings: Settings) -> str:
    return f"s3a://{settings.s3_bucket}/archive/{settings.views_topic}"


@dataclass(frozen=True)
class HourCompleteness:
    arrival_date: dt.date
    arrival_hour: int
    kafka_partition: int
    batch_id: int
    first_offset: int
    last_offset: int
    records: int


def write_archive_batch(rows: "DataFrame", path: str, batch_id: int) -> list[HourCompleteness]:
    """Write one batch's archive rows (replacing a previous attempt of the same batch) and
    return what it wrote per (arrival hour, Kafka partition). ``rows`` should be persisted."""
    from pyspark.sql import functions as F

    # A writer task per core at most, each writing one file per arrival hour it holds. The
    # Kafka source reads a partition per task: with fewer cores than partitions, a batch that
    # spans many arrival hours (a catch-up, the demo's day) made a file per hour and
    # partition, and S3 commits files by copying them (the demo's 50,000 records: 150 files,
    # 12.5 s to MinIO against 5.5 s to a local disk). Merging tasks moves no data; on a
    # cluster with a core per partition or more it changes nothing.
    writers = rows.sparkSession.sparkContext.defaultParallelism
    batch = rows.withColumn("batch_id", F.lit(batch_id)).coalesce(writers)
    (batch.write.mode("overwrite").option("partitionOverwriteMode", "dynamic")
     .partitionBy(*PARTITION_COLUMNS).parquet(path))
    written = (
        batch.groupBy("arrival_date", "arrival_hour", "partition")
        .agg(F.min("offset").alias("first_offset"), F.max("offset").alias("last_offset"),
             F.count(F.lit(1)).alias("records"))
        .collect()
    )
    return [HourCompleteness(row.arrival_date, row.arrival_hour, row.partition, batch_id,
                             row.first_offset, row.last_offset, row.records) for row in written]


@dataclass(frozen=True)
class SkippedRange:
    """Offsets first..last (inclusive) of a partition in an archiver batch's range that
    Kafka gave no record for (transaction markers, aborted records)."""

    kafka_partition: int
    first_offset: int
    last_offset: int
    batch_id: int

    @property
    def offsets(self) -> int:
        return self.last_offset - self.first_offset + 1


SKIPPED_BUCKET = 1_000_000  # offsets per partition key of archive_skipped_offsets


def skipped_ranges(rows: "DataFrame", batch_id: int, start_offsets: dict[int, int], end_offsets: dict[int, int],
                   received: dict[int, int]) -> list[SkippedRange]:
    """The offsets of [start, end) per partition that the batch's ``rows`` (persisted; with
    ``partition`` and ``offset``) do not hold. ``received`` is the rows per partition: a
    partition that got every offset of its range (the usual case) costs nothing more."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    short = [p for p, end in end_offsets.items() if received.get(p, 0) < end - start_offsets.get(p, end)]
    if not short:
        return []
    by_offset = Window.partitionBy("partition").orderBy("offset")
    # One pass: the records right after a hole, and each partition's last record.
    edges = (rows.filter(F.col("partition").isin(short)).select("partition", "offset")
             .withColumn("previous", F.lag("offset").over(by_offset))
             .withColumn("following", F.lead("offset").over(by_offset))
             .filter(F.col("previous").isNull() | (F.col("offset") - F.col("previous") > 1)
                     | F.col("following").isNull()))
    firsts: dict[int, list] = defaultdict(list)
    lasts: dict[int, int] = {}
    for row in edges.collect():
        firsts[row.partition].append((row.offset, row.previous))
        if row.following is None:
            lasts[row.partition] = row.offset
    ranges = []
    for partition in sorted(short):
        start, end = start_offsets.get(partition, end_offsets[partition]), end_offsets[partition]
        for offset, previous in sorted(firsts.get(partition, [])):
            after = start if previous is None else previous + 1
            if offset > after:
                ranges.append(SkippedRange(partition, after, offset - 1, batch_id))
        after = lasts[partition] + 1 if partition in lasts else start
        if after < end:
            ranges.append(SkippedRange(partition, after, end - 1, batch_id))
    return ranges


def write_skipped(session: "Session", topic: str, ranges: list[SkippedRange]) -> None:
    if not ranges:  # the usual batch: nothing to prepare or write
        return
    statement = session.prepare(
        "INSERT INTO archive_skipped_offsets (topic, kafka_partition, offset_bucket, first_offset, last_offset,"
        " batch_id) VALUES (?, ?, ?, ?, ?, ?)")
    for skipped in ranges:
        session.execute(statement, (topic, skipped.kafka_partition, skipped.first_offset // SKIPPED_BUCKET,
                                    skipped.first_offset, skipped.last_offset, skipped.batch_id))


def skipped_reader(session: "Session", topic: str) -> "Callable[[int, int, int], list[SkippedRange]]":
    """``read(partition, first, last)``: the skipped ranges of a partition that start at an
    offset in [first, last], in order. The statement is prepared on the first read."""
    statement = None

    def read(partition: int, first: int, last: int) -> list[SkippedRange]:
        nonlocal statement
        if last < first:
            return []
        if statement is None:
            statement = session.prepare(
                "SELECT first_offset, last_offset, batch_id FROM archive_skipped_offsets WHERE topic = ?"
                " AND kafka_partition = ? AND offset_bucket = ? AND first_offset >= ? AND first_offset <= ?")
        return [SkippedRange(partition, row.first_offset, row.last_offset, row.batch_id)
                for bucket in range(first // SKIPPED_BUCKET, last // SKIPPED_BUCKET + 1)
                for row in session.execute(statement, (topic, partition, bucket, first, last))]

    return read


def skipped_within(ranges: Iterable[SkippedRange], first: int, last: int) -> int:
    """How many offsets of [first, last] the ranges skip (ranges starting there: see above)."""
    return sum(min(skipped.last_offset, last) - skipped.first_offset + 1
               for skipped in ranges if first <= skipped.first_offset <= last)


def write_hours(session: "Session", topic: str, hours: list[HourCompleteness]) -> None:
    statement = session.prepare(
        "INSERT INTO archive_hours (topic, arrival_date, arrival_hour, kafka_partition, batch_id,"
        " first_offset, last_offset, records) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for hour in hours:
        session.execute(statement, (topic, hour.arrival_date, hour.arrival_hour, hour.kafka_partition,
                                    hour.batch_id, hour.first_offset, hour.last_offset, hour.records))


def read_hours(session: "Session", topic: str, days: Iterable[dt.date]) -> list[HourCompleteness]:
    statement = session.prepare(
        "SELECT arrival_date, arrival_hour, kafka_partition, batch_id, first_offset, last_offset,"
        " records FROM archive_hours WHERE topic = ? AND arrival_date = ?"
    )
    return [
        HourCompleteness(day, row.arrival_hour, row.kafka_partition, row.batch_id,
                         row.first_offset, row.last_offset, row.records)
        for day in days
        for row in session.execute(statement, (topic, day))
    ]


def offsets_by_partition(hours: Iterable[HourCompleteness]) -> dict[int, tuple[int, int, int]]:
    """(first offset, last offset, records) per Kafka partition over the given rows."""
    spans: dict[int, list[int]] = defaultdict(lambda: [2**63, -1, 0])
    for hour in hours:
        span = spans[hour.kafka_partition]
        span[0], span[1] = min(span[0], hour.first_offset), max(span[1], hour.last_offset)
        span[2] += hour.records
    return {partition: tuple(span) for partition, span in spans.items()}


def write_committed_offsets(session: "Session", topic: str, end_offsets: dict[int, int],
                            batch_id: int) -> None:
    statement = session.prepare(
        "INSERT INTO archive_progress (topic, kafka_partition, committed_end_offset, batch_id,"
        " updated_at) VALUES (?, ?, ?, ?, toTimestamp(now()))"
    )
    for partition, end in end_offsets.items():
        session.execute(statement, (topic, partition, end, batch_id))


def read_committed_offsets(session: "Session", topic: str) -> dict[int, int]:
    return {row.kafka_partition: row.committed_end_offset for row in session.execute(
        "SELECT kafka_partition, committed_end_offset FROM archive_progress WHERE topic = %s", (topic,))}


def archive_schema():
    from pyspark.sql.types import StructType

    return StructType.fromDDL(", ".join(f"`{name}` {kind}" for name, kind in ARCHIVE_COLUMNS))


Hour = tuple[dt.date, int]  # an archive partition: (arrival_date, arrival_hour)


def existing_hour_paths(spark: "SparkSession", root: str, hours: list[Hour]) -> dict[Hour, str]:
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


def read_archive_hours(spark: "SparkSession", root: str, hours: list[Hour]) -> "DataFrame":
    """Every archived record of these arrival hours (those that have a folder)."""
    paths = existing_hour_paths(spark, root, hours)
    return read_archive(spark, root, [paths[hour] for hour in hours if hour in paths])


def read_window(spark: "SparkSession", root: str, window: "BatchWindow") -> "DataFrame":
    """The archived records that arrived in the batch window of day D
    (``counting.day.arrived_in_window``): what the batch of D counts from."""
    from pyspark.sql import functions as F

    from counting.day import arrived_in_window

    return read_archive_hours(spark, root, window.hours()).filter(arrived_in_window(window, F.col("kafka_timestamp")))


def read_archive(spark: "SparkSession", root: str, paths: list[str]) -> "DataFrame":
    """The archived records under these hour folders (every batch_id in them)."""
    schema = archive_schema()
    if not paths:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", root).parquet(*paths).select(*schema.names)


def delete_hour(session: "Session", topic: str, hour: HourCompleteness) -> None:
    """Forget one archiver batch's row of one arrival hour and partition (as if it never ran)."""
    session.execute(session.prepare(
        "DELETE FROM archive_hours WHERE topic = ? AND arrival_date = ? AND arrival_hour = ?"
        " AND kafka_partition = ? AND batch_id = ?"),
        (topic, hour.arrival_date, hour.arrival_hour, hour.kafka_partition, hour.batch_id))
