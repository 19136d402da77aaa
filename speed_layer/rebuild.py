"""A counter started with a new checkpoint against a topic earlier counters already counted.

Speed cells hold absolute counts from Spark's state, so a counter with a new checkpoint
(host replaced, checkpoint lost, ``--starting-offsets latest``) knows only what it reads
itself: against a topic an earlier checkpoint counted, it would replace a cell holding
1,000 with 1. ``write_floor`` refuses such a start unless ``--rebuild`` is given, and a
rebuild writes only the minutes it can count whole:

- started at the earliest offsets while Kafka still holds every offset the earlier
  counters read: every minute (it reads all they read, and more);
- otherwise (records the earlier counters read have left the topic, or it starts at
  ``latest``): only minutes from the *write floor* on. Every record it does not read was
  appended to Kafka no later than a known time T (the planning time of the last logged
  batch that read such an offset; for ``latest``, the start), so its event time is at most
  T + the broker's allowance for producer clocks + the future rule (both from
  ``storage.topics`` and ``counting.reasons``): the floor is the first minute after that.
  The minutes before it keep what the earlier counters wrote; the batch layer's count of
  their days is the final one either way.

The floor is registered with the query (``speed_queries.write_floor``), so a restart from
the checkpoint keeps it and the reconciler knows which minutes the query never wrote.

A rebuild reads its whole backlog in its first batch (``whole_backlog``): Spark splits a
``maxOffsetsPerTrigger`` over the partitions by backlog, so a partition holding a burst
falls behind the others in event time, their watermark passes it, and its views are
dropped as late while the rebuild writes the cells it had counted with what is left:
lower than the earlier counters' (docs/reliability.md, "Billing safeguards"). Within one
batch nothing is late (Spark drops a row against the previous batch's watermark), so every
minute the rebuild writes holds all Kafka holds of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Iterable

from counting.reasons import MAX_FUTURE_SECONDS
from speed_layer.kafka_source import SourceOptions
from settings.errors import UserError
from storage.speed_microbatches import LoggedBatch, bucket_batches, bucket_first_batches
from storage.speed_queries import COUNTER_JOB, RegisteredQuery, registered_queries
from storage.topics import VIEWS_TIMESTAMP_AFTER_MAX_MS

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import SparkSession

# How far an event time can lie after the broker appended its record: the broker takes
# CreateTimes up to this far ahead of its clock, and the rule takes event times up to
# MAX_FUTURE_SECONDS after the CreateTime.
EVENT_TIME_ALLOWANCE = dt.timedelta(seconds=MAX_FUTURE_SECONDS + VIEWS_TIMESTAMP_AFTER_MAX_MS / 1000)
MINUTE = dt.timedelta(minutes=1)


def floor_after(appended_by: dt.datetime) -> dt.datetime:
    """The first minute no record appended to Kafka by ``appended_by`` can count in."""
    latest_event = appended_by + EVENT_TIME_ALLOWANCE
    return latest_event.replace(second=0, microsecond=0) + MINUTE


def reads_below(batch: LoggedBatch, offsets: dict[int, int]) -> bool:
    """Whether a logged batch read any offset below ``offsets`` (per partition)."""
    return any(partition in offsets and start < offsets[partition] and batch.end_offsets.get(partition, start) > start
               for partition, start in batch.start_offsets.items())


def starts_below(batch: LoggedBatch, offsets: dict[int, int]) -> bool:
    return any(partition in offsets and start < offsets[partition] for partition, start in batch.start_offsets.items())


def last_read_below(bucket_firsts: Iterable[tuple[int, LoggedBatch | None]], read_bucket,
                    offsets: dict[int, int]) -> dt.datetime | None:
    """The planning time of the last batch of one query that read an offset below
    ``offsets``, or None. A query's start offsets only grow with its batch id, so those
    batches come first: only the last bucket whose first batch starts below (and, when all
    of its batches there were empty, the ones before it) is read."""
    candidates = [bucket for bucket, first in bucket_firsts if first is not None and starts_below(first, offsets)]
    for bucket in reversed(candidates):
        times = [batch.batch_time for batch in read_bucket(bucket) if reads_below(batch, offsets) and batch.batch_time]
        if times:
            return max(times)
    return None


def _covering(session: "Session", topic: str) -> list[tuple[RegisteredQuery, list]]:
    found = []
    for query in registered_queries(session, COUNTER_JOB):
        firsts = list(bucket_first_batches(session, query.query_id, topic))
        if any(first is not None for _, first in firsts):
            found.append((query, firsts))
    return found


def _counted_before(covering: list[tuple[RegisteredQuery, list]], topic: str) -> UserError:
    names = ", ".join(f"{query.checkpoint}" for query, _ in covering)
    return UserError(
        f"the speed table already holds counts of topic {topic!r} from another checkpoint ({names}); "
        "a counter with a new checkpoint would overwrite them with partial counts. Restore that "
        "checkpoint with --checkpoint, or pass --rebuild to recount from Kafka (minutes it cannot "
        "recount whole keep their counts)")


def refuse_new_checkpoint(session: "Session", topic: str) -> None:
    """``write_floor``'s refusal alone (no --rebuild, earlier counters counted ``topic``),
    for a check made before a JVM starts."""
    covering = _covering(session, topic)
    if covering:
        raise _counted_before(covering, topic)


def write_floor(session: "Session", *, topic: str, earliest: dict[int, int], starting_offsets: str,
                rebuild: bool, now: dt.datetime) -> dt.datetime | None:
    """The first minute a counter with a new checkpoint may write (None: every minute).
    Raises UserError when earlier counters already counted ``topic`` and ``rebuild`` is off."""
    covering = _covering(session, topic)
    if not covering:
        return None  # the first counter of this topic: there is no count to overwrite
    if not rebuild:
        raise _counted_before(covering, topic)
    if starting_offsets == "latest":
        return floor_after(now)
    bounds = []
    for query, firsts in covering:
        bound = last_read_below(firsts, lambda bucket, q=query: bucket_batches(session, q.query_id, bucket, topic),
                                earliest)
        if bound is not None:
            bounds.append(bound)
    return floor_after(max(bounds)) if bounds else None


def whole_backlog(source: SourceOptions, *, bound_given: bool) -> SourceOptions:
    """A rebuild's reading: no bound per batch, so its first batch reads all Kafka holds.
    A bound the user asked for is refused rather than dropped in silence."""
    if bound_given and source.max_offsets_per_trigger:
        raise UserError(
            f"--rebuild reads Kafka's whole backlog in its first batch and refuses --max-offsets-per-trigger "
            f"{source.max_offsets_per_trigger}: Spark splits that bound over the partitions by backlog, so a "
            "partition holding a burst falls behind the others' watermark and its views are dropped as late "
            "while the rebuild lowers the cells counted before; leave the option out (or give 0)")
    return replace(source, max_offsets_per_trigger=None)


def unplanned_rebuild(spark: "SparkSession", session: "Session", *, checkpoint: str, topic: str) -> bool:
    """Whether a start from ``checkpoint`` resumes a rebuild stopped before it planned its
    first batch: that batch must still read the whole backlog. (An existing checkpoint
    without a planned batch, against a topic other queries counted, can only be a
    rebuild's: a new one is refused without ``--rebuild``.)"""
    from speed_layer.microbatch_log import planned_a_batch, read_query_id

    try:
        read_query_id(spark, checkpoint)
    except FileNotFoundError:
        return False  # a new checkpoint: the first counter of the topic, or refused
    return not planned_a_batch(spark, checkpoint) and bool(_covering(session, topic))
