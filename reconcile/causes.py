"""Why a cell diverges: each cause is proven from the event-level evidence, never guessed.

For a divergent cell (video, minute) with speed count ``s`` and batch count ``b``, the
evidence (``reconcile.consumption``) tallies distinct event ids of the cell's countable
occurrences (valid, event_time in D, arrived inside the batch's window):

- ``archived_ids``: ids found in the archive (what the batch read; equals b when the
  archive has not changed since the batch ran);
- ``counted_ids``: ids with an occurrence a speed micro-batch consumed and did not drop as
  late; ``counted_archived_ids`` / ``gap_counted_ids`` split them into ids in the archive
  and ids found only at the archive's gap offsets, read back from Kafka;
- ``late_ids``: archived ids that speed consumed, but only ever in batches whose
  ``late_watermark_ms`` was at or past their event_time (Spark dropped them as late);
- ``unconsumed_ids``: archived ids that no logged speed batch consumed (beyond what speed
  has read, or in a hole of its log: downtime, a checkpoint reset);
- ``after_cutoff_ids``: ids with no occurrence in the window that speed counted from an
  occurrence that arrived after the cutoff (within ``reconcile.evidence.AFTER_CUTOFF_SPAN``
  of it), read back from Kafka where speed's log says it read past the window;
- ``repeats_total``: counted occurrences minus counted ids (what counting occurrences
  instead of distinct ids would add), and ``repeats_by_batch``: the same per micro-batch
  (counted occurrences in the batch whose id had already been counted), i.e. what
  replaying that one batch without its dedupe state would add.

Rules, in order; the first that holds is the cause ("the batch read what the archive
holds" is ``archived_ids == b`` and is required by every rule but ``other``):

- ``late``: s < b, and s == counted_archived_ids, unconsumed_ids == 0 and
  b - s == late_ids: exactly the events the log proves were dropped behind the watermark.
- ``missing_in_speed``: s < b and s <= counted_archived_ids, with s < counted_archived_ids
  (speed counted events it no longer shows: lost writes, deleted rows) or
  unconsumed_ids > 0 (speed never read them: downtime, lag).
- ``missing_in_archive``: s > b, counted_archived_ids == b and s - b == gap_counted_ids:
  speed counted exactly the batch's events plus events Kafka holds at offsets the archive
  lacks.
- ``after_cutoff``: s > b, counted_archived_ids == b, gap_counted_ids == 0 and
  s - b == after_cutoff_ids: speed counted exactly the batch's events plus views of D that
  arrived after the day's cutoff (a counter catching up across midnight still had them
  inside its watermark), which the rule leaves out of D's final count.
- ``duplicate``: s > b, counted_ids == b, and s - b equals repeats_total or one value of
  repeats_by_batch: speed counted repeated occurrences of events it had already counted.
- ``other``: anything else (mixed causes, the archive changed after the batch ran, counts
  no evidence explains). Always investigated by hand.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from storage.reconciliations import CAUSES

from reconcile.consumption import CELL, EVIDENCE_COLUMNS

LATE, DUPLICATE, MISSING_IN_SPEED, MISSING_IN_ARCHIVE, AFTER_CUTOFF, OTHER = CAUSES


def cause(speed: Column, batch: Column) -> Column:
    """The cause of a divergent cell from its counts and EVIDENCE_COLUMNS (present, not NULL)."""
    archived, counted = F.col("archived_ids"), F.col("counted_ids")
    counted_archived, gap_counted = F.col("counted_archived_ids"), F.col("gap_counted_ids")
    late_ids, unconsumed, after_cutoff = F.col("late_ids"), F.col("unconsumed_ids"), F.col("after_cutoff_ids")
    batch_read_the_archive = archived == batch
    speed_lower, speed_higher, excess = speed < batch, speed > batch, speed - batch

    is_late = (speed_lower & batch_read_the_archive & (speed == counted_archived) & (unconsumed == 0)
               & (batch - speed == late_ids))
    is_missing_in_speed = (speed_lower & batch_read_the_archive & (speed <= counted_archived)
                           & ((speed < counted_archived) | (unconsumed > 0)))
    is_missing_in_archive = (speed_higher & batch_read_the_archive & (counted_archived == batch)
                             & (excess == gap_counted))
    is_after_cutoff = (speed_higher & batch_read_the_archive & (counted_archived == batch) & (gap_counted == 0)
                       & (excess == after_cutoff))
    repeats_explain = (excess == F.col("repeats_total")) | F.array_contains(F.col("repeats_by_batch"), excess)
    is_duplicate = speed_higher & batch_read_the_archive & (counted == batch) & repeats_explain
    return (F.when(is_late, F.lit(LATE))
            .when(is_missing_in_speed, F.lit(MISSING_IN_SPEED))
            .when(is_missing_in_archive, F.lit(MISSING_IN_ARCHIVE))
            .when(is_after_cutoff, F.lit(AFTER_CUTOFF))
            .when(is_duplicate, F.lit(DUPLICATE))
            .otherwise(F.lit(OTHER)))


def classify(divergent: DataFrame, evidence: DataFrame) -> DataFrame:
    """Divergent cells (video_id, minute, speed, batch, delta) with their ``cause`` and
    evidence; a cell without any occurrence has every tally 0."""
    zeros = {name: F.coalesce(name, F.lit(0)) for name in EVIDENCE_COLUMNS[:-1]}
    with_evidence = divergent.join(evidence, on=list(CELL), how="left").withColumns({
        **zeros,
        "repeats_by_batch": F.coalesce("repeats_by_batch", F.array().cast("array<long>")),
    })
    return with_evidence.withColumn("cause", cause(F.col("speed"), F.col("batch")))
