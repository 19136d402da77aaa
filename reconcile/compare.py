"""Speed vs batch per (video, minute): a full outer comparison of two sets of cells.

A cell present on one side only is compared with 0 on the other (a minute the speed
layer never wrote, or one the batch did not count, is a divergence like any other).
One pass over the join gives both the divergent cells (kept, they are few on a normal day)
and the day's totals, observed on the way rather than computed by a second join.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

CELL_KEY = ("video_id", "minute")
HOURS = range(24)


@dataclass(frozen=True)
class Totals:
    cells_compared: int
    cells_divergent: int
    views_speed: int
    views_batch: int
    abs_delta_views: int
    speed_by_hour: list[int] = field(default_factory=list)
    batch_by_hour: list[int] = field(default_factory=list)


def compared_cells(speed: DataFrame, batch: DataFrame) -> DataFrame:
    """Both sides' (video_id, minute, views) as (video_id, minute, speed, batch, delta);
    delta = speed - batch, a missing side counts 0."""
    speed_views = speed.select(*CELL_KEY, F.col("views").alias("speed"))
    batch_views = batch.select(*CELL_KEY, F.col("views").alias("batch"))
    joined = speed_views.join(batch_views, on=list(CELL_KEY), how="full_outer")
    speed_count, batch_count = F.coalesce("speed", F.lit(0)), F.coalesce("batch", F.lit(0))
    return joined.select(
        *CELL_KEY,
        speed_count.alias("speed"),
        batch_count.alias("batch"),
        (speed_count - batch_count).alias("delta"),
    )


def _total_metrics() -> list[Column]:
    return [
        F.count(F.lit(1)).alias("cells_compared"),
        F.count_if(F.col("delta") != 0).alias("cells_divergent"),
        F.sum("speed").alias("views_speed"),
        F.sum("batch").alias("views_batch"),
        F.sum(F.abs("delta")).alias("abs_delta_views"),
    ]


def views_by_hour(cells: DataFrame) -> list[int]:
    """Views per UTC hour of a day's (video_id, minute, views) cells.

    Its own small aggregation of one side, not more metrics on the join: 48 conditional
    sums there made every joined row cost more than the join itself."""
    by_hour = {row.hour: row.views for row in cells.groupBy(F.hour("minute").alias("hour")).agg(
        F.sum("views").alias("views")).collect()}
    return [int(by_hour.get(hour) or 0) for hour in HOURS]


def _totals(values: dict, speed_by_hour: list[int], batch_by_hour: list[int]) -> Totals:
    number = lambda name: int(values.get(name) or 0)  # noqa: E731 - sums over no rows are NULL
    return Totals(
        cells_compared=number("cells_compared"),
        cells_divergent=number("cells_divergent"),
        views_speed=number("views_speed"),
        views_batch=number("views_batch"),
        abs_delta_views=number("abs_delta_views"),
        speed_by_hour=speed_by_hour,
        batch_by_hour=batch_by_hour,
    )


def divergent_cells(speed: DataFrame, batch: DataFrame) -> tuple[DataFrame, Totals]:
    """The divergent cells, computed and persisted, and the totals over every cell.

    The caller unpersists the returned DataFrame when done with it.
    """
    compared = compared_cells(speed, batch)
    observation = Observation("reconcile_totals")
    divergent = compared.observe(observation, *_total_metrics()).filter(F.col("delta") != 0).persist()
    divergent.count()
    try:
        values = observation.get
    except Exception:  # noqa: BLE001 - adaptive execution can drop observed metrics of empty inputs
        values = compared.agg(*_total_metrics()).first().asDict()
    return divergent, _totals(values, views_by_hour(speed), views_by_hour(batch))
