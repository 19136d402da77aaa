"""The speed-layer counter: Kafka `views` -> per-minute view counts in Cassandra.

Two streaming queries in one Spark application, each with its own checkpoint:

- ``counter``: parse and validate with ``counting``, dedupe within the watermark, count per
  video per minute (update mode: every changed minute's new absolute total) and upsert
  the totals in ``foreachBatch``, then publish the same cells to the cell feed
  (``storage.cell_feed``, for the API workers' provisional partitions); the batch's offsets
  and watermarks go to the micro-batch log last, in the same call. Replaying a batch after
  a crash writes and publishes the same values with the same write timestamp.
- ``dead-letters``: every invalid record to `views.dlq`, original key and value bytes
  unchanged, the reason and the source coordinates as headers. A
  ``--max-offsets-per-trigger`` below the default bounds the counter's batches only; a
  ``--rebuild`` reads its whole backlog in one batch (``speed_layer.rebuild``).

spark-submit entry point: ``spark-submit ... speed_layer/counter.py [--available-now]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from counting.events import invalid_events, parse_events
from counting.reasons import MAX_FUTURE_SECONDS, REASONS
from counting.durations import DEFAULT_WATERMARK_DELAY, duration_text, parse_watermark_delay
from counting.views import count_views_per_minute
from speed_layer import jobs
from speed_layer.kafka_source import SourceOptions, read_views
from speed_layer.microbatch_log import (CheckpointOffsets, CounterLog, earliest_offsets, holds_query_locally,
                                        read_query_id)
from speed_layer.progress import INPUT_METRICS, BatchReport
from speed_layer.rebuild import unplanned_rebuild, whole_backlog
from speed_layer.watermark import WATERMARK_POLICY, batch_clock
from storage.cell_feed import publish_cells
from settings.errors import UserError, argument_type
from storage.kafka_config import spark_options
from storage.minute_counts import write_minute_counts
from storage.reachability import require_reachable
from settings.environment import Settings
from storage.speed_queries import COUNTER_JOB
from storage.topics import DLQ_MAX_MESSAGE_BYTES, require_topics

if TYPE_CHECKING:
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)

COUNTER = COUNTER_JOB
DEAD_LETTERS = "dead-letters"
SERVERS = ("kafka", "cassandra")


@dataclass(frozen=True)
class CounterOptions:
    checkpoint: str
    trigger: jobs.Trigger = field(default_factory=jobs.Trigger)
    watermark_delay: dt.timedelta = DEFAULT_WATERMARK_DELAY
    max_future_seconds: int = MAX_FUTURE_SECONDS
    source: SourceOptions = field(default_factory=SourceOptions)
    # Dead letters are not latency-sensitive: a longer interval spends fewer fixed
    # per-batch costs on the cores the counter needs.
    dead_letter_trigger: jobs.Trigger = field(default_factory=lambda: jobs.Trigger(interval_seconds=10.0))
    # A rebuild's first minute to write (speed_layer.rebuild); a restart keeps the one
    # registered with the query at its first start.
    write_floor: dt.datetime | None = None

    @property
    def counts_checkpoint(self) -> str:
        return f"{self.checkpoint}/counts"

    @property
    def dead_letters_checkpoint(self) -> str:
        return f"{self.checkpoint}/dead-letters"

    @property
    def dead_letter_source(self) -> SourceOptions:
        """The dead-letter query's reading: as the counter's, in batches of at least the
        default bound. A bound smaller than that only matters for the counter (how far its
        watermark moves per batch); the dead-letter query holds no state, and each batch
        of it costs some 0.4 s of planning and commits however few records it has."""
        bound = self.source.max_offsets_per_trigger
        if not bound:
            return self.source
        return replace(self.source, max_offsets_per_trigger=max(bound, SourceOptions.max_offsets_per_trigger))


def input_metrics() -> list:
    """Observed on the parsed records of every batch: rows in and invalid per reason."""
    return [F.count(F.lit(1)).alias("rows_in")] + [
        F.count_if(F.col("reason") == reason).alias(reason) for reason in REASONS
    ]


class MinuteCountSink:
    """foreachBatch of the counter: upsert the batch's totals, publish them, log the batch."""

    def __init__(self, spark: SparkSession, settings: Settings, options: CounterOptions):
        self.spark = spark
        self.settings = settings
        self.options = options
        self._log: CounterLog | None = None
        self.write_floor: dt.datetime | None = None
        self.offsets = CheckpointOffsets(spark, settings, options.counts_checkpoint)

    def log(self) -> CounterLog:
        if self._log is None:
            from storage.cassandra import cached_session

            query_id = read_query_id(self.spark, self.options.counts_checkpoint)
            self._log = CounterLog(cached_session(self.settings), query_id)
            registered = self._log.register(COUNTER, self.options.counts_checkpoint, self.options.write_floor)
            self.write_floor = registered.write_floor
        return self._log

    def __call__(self, counts: DataFrame, batch_id: int) -> None:
        offsets = self.offsets.of(batch_id)
        started = time.monotonic()
        # Cells carry the batch order as their write timestamp: a leftover writer of an
        # earlier batch (a dead driver's, an executor with a lagging clock) cannot win.
        write_timestamp = self.log().write_timestamp(offsets)
        if self.write_floor is not None:  # a rebuild: minutes it cannot count whole keep their counts
            counts = counts.filter(F.unix_millis("minute") >= int(self.write_floor.timestamp() * 1000))
        # Two writes of one stateful batch: computed once, not once per write.
        with jobs.persisted(counts):
            # The stateful plan runs in this first action (the DataFrame is persisted for the next).
            rows_written = write_minute_counts(counts, self.settings, write_timestamp=write_timestamp)
            written = time.monotonic()
            # Published once written: a record published before an API worker began to follow
            # the feed is in the speed table when the worker reads the partition after. Logged
            # last: a batch that failed in between is replayed, the same values republished
            # with the same write timestamp.
            if rows_written:  # a record per row written, or the batch fails here
                publish_cells(counts, self.settings, write_timestamp)
        published = time.monotonic()
        self.log().record(offsets, rows_written, write_timestamp)
        log.info(f"[{COUNTER}] batch {batch_id}: counted and wrote {rows_written:,} minute cells "
                 f"in {written - started:.2f} s, published {rows_written:,} to {self.settings.cells_topic} "
                 f"in {published - written:.2f} s, logged the batch in {time.monotonic() - published:.2f} s")

    def add_progress(self, report: BatchReport) -> None:
        self.log().add_progress(
            report.batch_id, rows_in=report.rows_in, late_dropped=report.late_dropped,
            duplicates_dropped=report.duplicates_dropped, invalid=report.invalid,
            duration_ms=report.duration_ms,
        )


def dead_letter_records(records: DataFrame, max_future_seconds: int) -> DataFrame:
    """Invalid records as Kafka sink rows: original key and value, reason and origin headers."""

    def header(name: str, value) -> F.Column:
        return F.struct(F.lit(name).alias("key"), value.cast("string").cast("binary").alias("value"))

    return (
        records.transform(parse_events(max_future_seconds))
        .transform(invalid_events)
        .select(
            F.col("key"),
            F.col("value"),
            F.array(
                header("reason", F.col("reason")),
                header("source_topic", F.col("topic")),
                header("source_partition", F.col("partition")),
                header("source_offset", F.col("offset")),
                header("source_timestamp_ms", F.unix_millis(F.col("kafka_timestamp"))),
            ).alias("headers"),
        )
    )


def start(spark: SparkSession, settings: Settings, options: CounterOptions,
          sink: MinuteCountSink) -> list["StreamingQuery"]:
    for key, value in WATERMARK_POLICY.items():  # a new checkpoint records it; a restart keeps its own
        spark.conf.set(key, value)
    records = read_views(spark, settings, options.source)
    parsed = records.transform(parse_events(options.max_future_seconds))
    counts = parsed.observe(INPUT_METRICS, *input_metrics()).transform(
        count_views_per_minute(options.watermark_delay, watermark_bound=batch_clock(records, options.watermark_delay))
    )
    counter = options.trigger.apply(
        counts.writeStream.queryName(COUNTER)
        .outputMode("update")
        .foreachBatch(sink)
        .option("checkpointLocation", options.counts_checkpoint)
    ).start()
    try:
        sink.log()  # registers the query (and a rebuild's floor) now, before its first batch
    except Exception as error:  # noqa: BLE001 - Cassandra gone for a moment: the first batch registers it
        log.warning(f"[{COUNTER}] query not registered yet ({error}); its first batch will")
    dead_letters = options.dead_letter_trigger.apply(
        dead_letter_records(read_views(spark, settings, options.dead_letter_source), options.max_future_seconds)
        .writeStream.queryName(DEAD_LETTERS)
        .format("kafka")
        .options(**spark_options(settings))
        .option("topic", settings.dlq_topic)
        .option("kafka.max.request.size", str(DLQ_MAX_MESSAGE_BYTES))
        # A dead letter is written once enough replicas have it (the topic's min.insync.replicas).
        .option("kafka.acks", "all")
        .option("checkpointLocation", options.dead_letters_checkpoint)
    ).start()
    return [counter, dead_letters]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    jobs.add_common_arguments(parser, default_checkpoint="counter")
    parser.add_argument("--dead-letter-trigger-seconds", type=jobs.non_negative(float), default=10.0,
                        metavar="S", help="micro-batch interval of the dead-letter query when running "
                                          "continuously (default: %(default)s)")
    parser.add_argument("--watermark-delay", type=argument_type(parse_watermark_delay),
                        default=DEFAULT_WATERMARK_DELAY, metavar="DURATION",
                        help="how far behind the newest event time views are still counted, like '10m' "
                             f"or '90s', at least 1m (default: {duration_text(DEFAULT_WATERMARK_DELAY)})")
    parser.add_argument("--rebuild", action="store_true",
                        help="start a new checkpoint although earlier counters already counted the topic "
                             "(a lost checkpoint): recount from Kafka, the whole backlog in one batch "
                             "(--max-offsets-per-trigger is refused), writing only the minutes it can "
                             "count whole (docs/reliability.md)")


def _rebuild_of_a_held_checkpoint(options: CounterOptions) -> UserError:
    return UserError(f"--rebuild starts a new checkpoint, but {options.counts_checkpoint} already holds "
                     "one: without --rebuild the counter resumes from it")


def refuse_before_spark(settings: Settings, options: CounterOptions, *, rebuild: bool) -> None:
    """``new_checkpoint_floor``'s refusals, made before the JVM starts (some 30 s a refusal)
    when the checkpoint is a folder of this machine; one elsewhere (s3a://) is read through
    Spark, and refused by ``new_checkpoint_floor``."""
    from speed_layer.rebuild import refuse_new_checkpoint
    from storage.cassandra import cached_session

    held = holds_query_locally(options.counts_checkpoint)
    if held and rebuild:
        raise _rebuild_of_a_held_checkpoint(options)
    if held is False and not rebuild:
        refuse_new_checkpoint(cached_session(settings), settings.views_topic)


def new_checkpoint_floor(spark: SparkSession, settings: Settings, options: CounterOptions, *,
                         rebuild: bool) -> dt.datetime | None:
    """Before a new checkpoint starts: refuse it against a topic earlier counters counted,
    unless rebuilding, and say which minutes a rebuild will write (``speed_layer.rebuild``)."""
    from speed_layer.rebuild import write_floor
    from storage.cassandra import cached_session

    try:
        read_query_id(spark, options.counts_checkpoint)
    except FileNotFoundError:
        pass
    else:
        if rebuild:
            raise _rebuild_of_a_held_checkpoint(options)
        return None  # a restart: the floor registered at the first start applies
    floor = write_floor(cached_session(settings), topic=settings.views_topic, earliest=earliest_offsets(settings),
                        starting_offsets=options.source.starting_offsets, rebuild=rebuild,
                        now=dt.datetime.now(dt.timezone.utc))
    if rebuild:
        written = (f"minutes from {floor:%Y-%m-%d %H:%M} UTC on; earlier minutes keep their counts"
                   if floor else "every minute (Kafka still holds every offset counted before)")
        log.info(f"[{COUNTER}] rebuilding the speed table from {options.source.starting_offsets} offsets: "
                 f"writing {written}")
    return floor


def run(args: argparse.Namespace) -> int:
    from storage.cassandra import cached_session

    settings = Settings.from_env()
    require_reachable(settings, *SERVERS)  # one clear line now, not restarts of a JVM later
    require_topics(settings, [settings.dlq_topic, settings.cells_topic])
    bound_given = args.max_offsets_per_trigger is not None
    source = jobs.source_from_args(args)
    if args.rebuild:  # refused before a JVM starts
        source = whole_backlog(source, bound_given=bound_given)
    options = CounterOptions(
        checkpoint=jobs.checkpoint_location(args, settings, "counter"),
        trigger=jobs.trigger_from_args(args),
        dead_letter_trigger=jobs.Trigger(args.available_now, args.dead_letter_trigger_seconds),
        watermark_delay=args.watermark_delay,
        source=source,
    )
    refuse_before_spark(settings, options, rebuild=args.rebuild)
    spark = jobs.session("viewcount-counter", settings, args)
    options = replace(options, write_floor=new_checkpoint_floor(spark, settings, options, rebuild=args.rebuild))
    if not args.rebuild and unplanned_rebuild(spark, cached_session(settings), checkpoint=options.counts_checkpoint,
                                              topic=settings.views_topic):
        options = replace(options, source=whole_backlog(options.source, bound_given=bound_given))
    jobs.serve(args)
    # One sink and one listener for every restart: the checkpoint keeps the query's id.
    sink = MinuteCountSink(spark, settings, options)
    jobs.listen(spark, {COUNTER: sink.add_progress, DEAD_LETTERS: None})
    jobs.monitor_lag(settings, COUNTER)
    return jobs.supervise(spark, lambda: start(spark, settings, options, sink), options.trigger,
                          args.max_restarts, jobs.servers_up(settings, *SERVERS))


def main(argv: list[str] | None = None) -> int:
    return jobs.submit_entry(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
