"""Which records and events count for day D, as Spark columns: the one home of the rule the
batch, the reconciler's evidence and the quality checks all apply.

Day D counts the valid events whose event_time falls in D and that arrived (Kafka
timestamp) in D's window, [start, cutoff) of ``counting.window.BatchWindow`` (DESIGN).
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from counting.events import valid_events
from counting.window import BatchWindow


def arrived_in_window(window: BatchWindow, arrival: Column) -> Column:
    """True for an arrival time in [start, cutoff): a record the batch of D reads."""
    return ~arrived_before_window(window, arrival) & ~arrived_past_cutoff(window, arrival)


def arrived_before_window(window: BatchWindow, arrival: Column) -> Column:
    """True for an arrival before the window starts: it cannot count for D."""
    return arrival < F.lit(window.start)


def arrived_past_cutoff(window: BatchWindow, arrival: Column) -> Column:
    """True for an arrival at or after the cutoff: too late to count for D."""
    return arrival >= F.lit(window.cutoff)


def falls_in_day(window: BatchWindow, event_time: Column | None = None) -> Column:
    """True for an event_time in [D 00:00, D+1 00:00) UTC."""
    event_time = F.col("event_time") if event_time is None else event_time
    return (event_time >= F.lit(window.day_start)) & (event_time < F.lit(window.day_end))


def countable_for_day(window: BatchWindow) -> Callable[[DataFrame], DataFrame]:
    """The parsed events (``counting.events.parse_events``) of the window's arrivals that
    count for D, before dedupe: ``events.transform(countable_for_day(window))``."""

    def countable(events: DataFrame) -> DataFrame:
        return events.transform(valid_events).filter(falls_in_day(window))

    return countable
