"""What each counter micro-batch consumed, read from its checkpoint, and the write
timestamp of its cells; the log itself (``speed_microbatches``) is
``storage.speed_microbatches``.

What a batch consumed and which watermark it applied is read from the query's own
write-ahead offset log (``<checkpoint>/offsets/<batch id>``), which Spark writes before
the batch runs, and is stored inside the batch, so a replayed batch rewrites the same row.
Spark drops a row as late in batch N when ``event_time <= watermark`` of batch N-1 (the
batch's own watermark only evicts state); both are recorded. Counters that Spark only
reports after the batch (rows in, late, duplicates, invalid per reason) are added by the
progress listener.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from settings.environment import Settings
from storage.speed_microbatches import BatchOffsets, MicrobatchLog

if TYPE_CHECKING:
    import datetime as dt

    from cassandra.cluster import Session
    from pyspark.sql import SparkSession

    from storage.speed_queries import RegisteredQuery


def _read_text(spark: "SparkSession", path: str) -> str | None:
    """A small file through Hadoop's FileSystem, so local and s3a checkpoints both work."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hadoop_path):
        return None
    stream = fs.open(hadoop_path)
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def _parse_offset_log(text: str) -> tuple[dict, dict[str, dict[int, int]]]:
    lines = text.splitlines()
    if not lines or lines[0] != "v1":
        raise ValueError(f"unsupported offset log version {lines[:1]}")
    metadata = json.loads(lines[1])
    offsets = json.loads(lines[2]) if len(lines) > 2 and lines[2] != "-" else {}
    return metadata, {
        topic: {int(partition): int(offset) for partition, offset in partitions.items()}
        for topic, partitions in offsets.items()
    }


def _parse_initial_offsets(text: str) -> dict[str, dict[int, int]]:
    """The Kafka source's initial offsets (``<checkpoint>/sources/0/0``): a NUL byte kept
    for old readers, ``v1``, then the offsets as JSON per topic and partition."""
    version, _, offsets = text.lstrip("\0").partition("\n")
    if version != "v1":
        raise ValueError(f"unsupported initial offsets version {version!r}")
    return {topic: {int(partition): int(offset) for partition, offset in partitions.items()}
            for topic, partitions in json.loads(offsets).items()}


def read_batch_offsets(
    spark: "SparkSession", checkpoint: str, batch_id: int, topic: str,
    earliest_offsets: dict[int, int],
) -> BatchOffsets:
    """Offsets and watermarks of one batch. Batch 0 starts where the query's Kafka source
    started (its initial offsets: the earliest, the latest or given ones, as
    ``--starting-offsets`` said); a partition the previous batch did not have starts at its
    earliest offset (``earliest_offsets``), as Spark reads a new partition."""
    metadata, ends = _parse_offset_log(_read_text(spark, f"{checkpoint}/offsets/{batch_id}"))
    if batch_id:
        previous_text = _read_text(spark, f"{checkpoint}/offsets/{batch_id - 1}")
        previous_metadata, previous_ends = _parse_offset_log(previous_text) if previous_text else ({}, {})
    else:
        initial_text = _read_text(spark, f"{checkpoint}/sources/0/0")
        previous_metadata, previous_ends = {}, _parse_initial_offsets(initial_text) if initial_text else {}
    end_offsets = ends.get(topic, {})
    start_offsets = {
        partition: previous_ends.get(topic, {}).get(partition, earliest_offsets.get(partition, 0))
        for partition in end_offsets
    }
    return BatchOffsets(
        batch_id=batch_id,
        topic=topic,
        start_offsets=start_offsets,
        end_offsets=end_offsets,
        late_watermark_ms=int(previous_metadata.get("batchWatermarkMs", 0)),
        eviction_watermark_ms=int(metadata.get("batchWatermarkMs", 0)),
        batch_timestamp_ms=int(metadata.get("batchTimestampMs", 0)),
    )


def next_write_timestamp(batch_timestamp_ms: int, previous: int | None) -> int:
    """The write timestamp (microseconds) of a batch's speed cells: the time Spark planned
    the batch at (from its offset log, so a replay gets the same), and strictly above the
    previous batch's, whatever the driver's clock did between them."""
    planned = batch_timestamp_ms * 1000
    return planned if previous is None else max(planned, previous + 1)


def earliest_offsets(settings: Settings) -> dict[int, int]:
    from storage.topics import partition_offsets

    return {partition: low for partition, (low, _) in partition_offsets(settings, settings.views_topic).items()}


class CheckpointOffsets:
    """What each batch of one query consumed, read from its checkpoint's offset log."""

    def __init__(self, spark: "SparkSession", settings: Settings, checkpoint: str):
        self.spark = spark
        self.settings = settings
        self.checkpoint = checkpoint
        self._earliest: dict[int, int] | None = None

    def of(self, batch_id: int) -> BatchOffsets:
        if self._earliest is None:  # only batch 0 and new partitions need them; ask once
            self._earliest = earliest_offsets(self.settings)
        return read_batch_offsets(self.spark, self.checkpoint, batch_id,
                                  self.settings.views_topic, self._earliest)


def read_query_id(spark: "SparkSession", checkpoint: str) -> str:
    """Spark's id of the query behind a checkpoint (stable across restarts)."""
    text = _read_text(spark, f"{checkpoint}/metadata")
    if text is None:
        raise FileNotFoundError(f"no query metadata in {checkpoint}")
    return json.loads(text.splitlines()[0])["id"]


def holds_query_locally(checkpoint: str) -> bool | None:
    """Whether a checkpoint on this machine's file system holds a query (Spark's
    ``metadata``, what ``read_query_id`` reads), known without a JVM; None for a URI of
    another file system (``s3a://``), which only Hadoop's FileSystem reads."""
    parsed = urlsplit(checkpoint)
    if parsed.scheme not in ("", "file"):
        return None
    return (Path(parsed.path if parsed.scheme else checkpoint) / "metadata").is_file()


def planned_a_batch(spark: "SparkSession", checkpoint: str) -> bool:
    """Whether the query behind a checkpoint planned a batch: Spark writes a batch's offsets
    (``offsets/<batch id>``) before it runs, and purges only old ones, never the last."""
    jvm = spark.sparkContext._jvm
    offsets = jvm.org.apache.hadoop.fs.Path(f"{checkpoint}/offsets")
    fs = offsets.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(offsets):
        return False
    return any(status.getPath().getName().isdigit() for status in fs.listStatus(offsets))


class CounterLog:
    """The counter's micro-batch log for one query (one checkpoint): which write timestamp
    a batch's cells get, remembered from the batch recorded last."""

    def __init__(self, session: "Session", query_id: str):
        self.log = MicrobatchLog(session, query_id)
        self._last_written: tuple[int, int] | None = None  # (batch id, write timestamp) last recorded here

    def write_timestamp(self, batch: BatchOffsets) -> int:
        """The timestamp to write this batch's cells with: the one logged for it when the
        batch is a replay, else ``next_write_timestamp`` after the batch before it. The batch
        this process recorded last answers both without a read; the log is read only for the
        first batch after a start."""
        last_id, last_stamp = self._last_written or (None, None)
        if last_id == batch.batch_id:
            return last_stamp
        if last_id is not None and last_id == batch.batch_id - 1:
            return next_write_timestamp(batch.batch_timestamp_ms, last_stamp)
        logged = self.log.logged_write_timestamp(batch.batch_id)
        if logged is not None:
            return logged
        previous = self.log.logged_write_timestamp(batch.batch_id - 1) if batch.batch_id else None
        return next_write_timestamp(batch.batch_timestamp_ms, previous)

    def record(self, batch: BatchOffsets, rows_written: int, write_timestamp: int | None = None) -> None:
        self.log.record(batch, rows_written, write_timestamp)
        if write_timestamp is not None:
            self._last_written = (batch.batch_id, write_timestamp)

    def add_progress(self, batch_id: int, *, rows_in: int, late_dropped: int,
                     duplicates_dropped: int, invalid: dict[str, int], duration_ms: int) -> None:
        self.log.add_progress(batch_id, rows_in=rows_in, late_dropped=late_dropped,
                              duplicates_dropped=duplicates_dropped, invalid=invalid, duration_ms=duration_ms)

    def register(self, job: str, checkpoint: str, write_floor: "dt.datetime | None" = None) -> "RegisteredQuery":
        """Register the query at its first start; a restart gets the row of that start back
        (its write floor: ``speed_layer.rebuild``)."""
        from storage.speed_queries import register_query

        return register_query(self.log.session, job, self.log.query_id, checkpoint, write_floor)
