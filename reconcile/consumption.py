"""What the speed layer did with each occurrence, and the per-cell tallies causes are
proven from.

Occurrences come from inside the batch's window and, marked ``past_cutoff``, from after its
cutoff (``reconcile.evidence``). An occurrence is *consumed* by a micro-batch whose logged offsets [start, end) of its
partition contain its offset; Spark dropped it there as late when
``counting.views.is_dropped_as_late`` (its event_time at or behind the watermark of the
batch before; from the very first batch, whose watermark is 0). An
occurrence is *counted* when some batch consumed it and did not drop it as late. A batch of
a rebuild (``speed_layer.rebuild``) never wrote the minutes before its query's write floor:
it does not count as consuming their occurrences.

The logged ranges are joined by (partition, offset bucket) and then by range, so each
occurrence meets only the few batches that read its bucket, not the whole log.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from counting.views import is_dropped_as_late
from reconcile.speed_log import ConsumedRange

# Offsets per join bucket: a batch spans (end - start) / OFFSET_BUCKET + 1 buckets, and an
# occurrence meets every batch of its bucket (at most OFFSET_BUCKET of them).
OFFSET_BUCKET = 1_000
CELL = ("video_id", "minute")
RANGE_SCHEMA = T.StructType([
    T.StructField("query_id", T.StringType(), False),
    T.StructField("batch_id", T.LongType(), False),
    T.StructField("partition", T.IntegerType(), False),
    T.StructField("start", T.LongType(), False),
    T.StructField("end", T.LongType(), False),
    T.StructField("late_watermark_ms", T.LongType(), False),
    T.StructField("written_from_ms", T.LongType(), False),
])
EVIDENCE_COLUMNS = ("archived_ids", "counted_ids", "counted_archived_ids", "gap_counted_ids", "late_ids",
                    "unconsumed_ids", "after_cutoff_ids", "repeats_total", "repeats_by_batch")


def ranges_frame(spark: SparkSession, ranges: list[ConsumedRange]) -> DataFrame:
    rows = [(r.query_id, r.batch_id, r.partition, r.start, r.end, r.late_watermark_ms, r.written_from_ms)
            for r in ranges]
    return spark.createDataFrame(rows, RANGE_SCHEMA)


def _bucket(offset: Column) -> Column:
    return (offset / F.lit(OFFSET_BUCKET)).cast("long")  # offsets are never negative


def occurrence_status(occurrences: DataFrame, ranges: DataFrame) -> DataFrame:
    """Per occurrence: consumed, counted, and the batch that counted it (the first, by
    (query_id, batch_id), of the batches that consumed it without dropping it)."""
    bucketed = ranges.withColumn("bucket", F.explode(F.sequence(_bucket(F.col("start")), _bucket(F.col("end") - 1))))
    occurrence = occurrences.withColumn("bucket", _bucket(F.col("offset"))).alias("o")
    log = bucketed.alias("r")
    reads_it = ((F.col("o.partition") == F.col("r.partition")) & (F.col("o.bucket") == F.col("r.bucket"))
                & (F.col("o.offset") >= F.col("r.start")) & (F.col("o.offset") < F.col("r.end"))
                & ((F.col("r.written_from_ms") == 0)
                   | (F.col("o.event_time_us") >= F.col("r.written_from_ms") * F.lit(1000))))
    joined = occurrence.join(log, on=reads_it, how="left")
    is_late = is_dropped_as_late(F.col("o.event_time_us"), F.col("r.late_watermark_ms"))
    counted_by = F.when(F.col("r.query_id").isNotNull() & ~is_late, F.struct("r.query_id", "r.batch_id"))
    return joined.groupBy(*[F.col(f"o.{name}") for name in (*CELL, "event_id", "partition", "offset",
                                                              "in_archive", "past_cutoff")]).agg(
        (F.count("r.query_id") > 0).alias("consumed"),
        F.min(counted_by).alias("counted_by"),
    ).withColumn("counted", F.col("counted_by").isNotNull())


def _repeats_by_batch(status: DataFrame) -> DataFrame:
    """Per cell, the distinct non-zero numbers of counted occurrences in one batch whose id
    had already been counted (earlier, or earlier in the same batch): what replaying that
    one batch without its dedupe state would add."""
    counted = status.filter("counted AND NOT past_cutoff").select(*CELL, "event_id",
                                                                  F.col("counted_by").alias("batch"))
    per_batch = counted.groupBy(*CELL, "batch").agg(F.count(F.lit(1)).alias("occurrences"))
    firsts = (counted.groupBy(*CELL, "event_id").agg(F.min("batch").alias("batch"))
              .groupBy(*CELL, "batch").agg(F.count(F.lit(1)).alias("first_counted")))
    repeats = (per_batch.join(firsts, on=[*CELL, "batch"], how="left")
               .select(*CELL, (F.col("occurrences") - F.coalesce("first_counted", F.lit(0))).alias("repeats")))
    return (repeats.filter(F.col("repeats") > 0).groupBy(*CELL)
            .agg(F.array_sort(F.collect_set("repeats")).alias("repeats_by_batch")))


def cell_evidence(status: DataFrame) -> DataFrame:
    """Per cell (video_id, minute): EVIDENCE_COLUMNS, tallies of distinct event ids. Every
    tally but ``after_cutoff_ids`` is of the occurrences inside the batch's window."""
    in_window = ~F.col("past_cutoff")
    per_id = status.groupBy(*CELL, "event_id").agg(
        F.max(in_window).alias("in_window"),
        F.max(in_window & F.col("in_archive")).alias("in_archive"),
        F.max(in_window & F.col("consumed")).alias("consumed"),
        F.max(in_window & F.col("counted")).alias("counted"),
        F.max(F.col("past_cutoff") & F.col("counted")).alias("counted_after_cutoff"),
        F.count_if(in_window & F.col("counted")).alias("counted_occurrences"),
    )
    in_archive, counted, consumed = F.col("in_archive"), F.col("counted"), F.col("consumed")
    tallies = per_id.groupBy(*CELL).agg(
        F.count_if(in_archive).alias("archived_ids"),
        F.count_if(counted).alias("counted_ids"),
        F.count_if(counted & in_archive).alias("counted_archived_ids"),
        F.count_if(counted & ~in_archive).alias("gap_counted_ids"),
        F.count_if(in_archive & consumed & ~counted).alias("late_ids"),
        F.count_if(in_archive & ~consumed).alias("unconsumed_ids"),
        F.count_if(F.col("counted_after_cutoff") & ~F.col("in_window")).alias("after_cutoff_ids"),
        (F.sum("counted_occurrences") - F.count_if(counted)).alias("repeats_total"),
    )
    return tallies.join(_repeats_by_batch(status), on=list(CELL), how="left").select(
        *CELL, *EVIDENCE_COLUMNS[:-1],
        F.coalesce("repeats_by_batch", F.array().cast("array<long>")).alias("repeats_by_batch"),
    )
