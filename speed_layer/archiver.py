"""The speed-layer archiver: every committed record of `views`, valid or not, to Parquet on S3.

Each row keeps the Kafka coordinates (topic, partition, offset, timestamp), key, value
bytes and headers unchanged, partitioned by arrival (Kafka timestamp) date and hour and by
the archiver's batch id. The sink is exactly-once with its own checkpoint: a micro-batch
writes only its own ``batch_id`` partitions with dynamic overwrite, so a batch replayed
after a crash replaces what its first attempt wrote. In the same call it records, per
arrival hour and Kafka partition, the offsets it archived (``storage.archive``) and how
far the archive reaches, and the offsets of its range Kafka gave it no record for
(transaction markers, aborted records); the batch layer and the reconciler prove
completeness from them.

spark-submit entry point: ``spark-submit ... speed_layer/archiver.py [--available-now]``.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from speed_layer import jobs
from speed_layer.kafka_source import SourceOptions, read_views
from speed_layer.microbatch_log import CheckpointOffsets
from storage.archive import (archive_path, skipped_ranges, write_archive_batch, write_committed_offsets,
                             write_hours, write_skipped)
from storage.cassandra import cached_session
from storage.reachability import require_reachable
from storage.s3 import require_credentials
from settings.environment import Settings

ARCHIVER = "archiver"
SERVERS = ("kafka", "cassandra", "s3")


@dataclass(frozen=True)
class ArchiverOptions:
    checkpoint: str
    path: str
    trigger: jobs.Trigger = field(default_factory=lambda: jobs.Trigger(interval_seconds=30.0))
    source: SourceOptions = field(default_factory=SourceOptions)


def archive_rows(records: DataFrame) -> DataFrame:
    """Kafka source rows as archive rows: nothing dropped, nothing altered."""
    return records.select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("timestampType").alias("timestamp_type"),
        F.col("key"),
        F.col("value"),
        F.col("headers"),
        F.to_date(F.col("timestamp")).alias("arrival_date"),
        F.hour(F.col("timestamp")).alias("arrival_hour"),
    )


class ArchiveSink:
    """foreachBatch of the archiver: the files, then what they hold, then how far we are."""

    def __init__(self, spark: SparkSession, settings: Settings, options: ArchiverOptions):
        self.spark = spark
        self.settings = settings
        self.options = options
        self.offsets = CheckpointOffsets(spark, settings, options.checkpoint)

    def __call__(self, rows: DataFrame, batch_id: int) -> None:
        offsets = self.offsets.of(batch_id)
        with jobs.persisted(rows):
            hours = write_archive_batch(rows, self.options.path, batch_id)
            received = defaultdict(int)
            for hour in hours:
                received[hour.kafka_partition] += hour.records
            skipped = skipped_ranges(rows, batch_id, offsets.start_offsets, offsets.end_offsets, received)
        session = cached_session(self.settings)
        write_hours(session, self.settings.views_topic, hours)
        write_skipped(session, self.settings.views_topic, skipped)
        write_committed_offsets(session, self.settings.views_topic, offsets.end_offsets, batch_id)


def start(spark: SparkSession, settings: Settings, options: ArchiverOptions):
    return options.trigger.apply(
        archive_rows(read_views(spark, settings, options.source, headers=True))
        .writeStream.queryName(ARCHIVER)
        .foreachBatch(ArchiveSink(spark, settings, options))
        .option("checkpointLocation", options.checkpoint)
    ).start()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    jobs.add_common_arguments(parser, default_checkpoint="archiver")
    parser.add_argument("--path", metavar="URI",
                        help="archive root (default: s3a://<bucket>/archive/<topic>)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_reachable(settings, *SERVERS)  # one clear line now, not restarts of a JVM later
    require_credentials(settings)
    options = ArchiverOptions(
        checkpoint=jobs.checkpoint_location(args, settings, "archiver"),
        path=args.path or archive_path(settings),
        trigger=jobs.trigger_from_args(args),
        source=jobs.source_from_args(args),
    )
    spark = jobs.session("viewcount-archiver", settings, args)
    jobs.serve(args)
    jobs.listen(spark, {ARCHIVER: None})
    jobs.monitor_lag(settings, ARCHIVER)
    return jobs.supervise(spark, lambda: [start(spark, settings, options)], options.trigger,
                          args.max_restarts, jobs.servers_up(settings, *SERVERS))


def main(argv: list[str] | None = None) -> int:
    return jobs.submit_entry(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
