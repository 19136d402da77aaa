"""The `views` topic as a streaming DataFrame, shared by the counter and the archiver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.kafka_config import spark_reader_options
from settings.environment import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class SourceOptions:
    starting_offsets: str = "earliest"
    # Bounds one micro-batch while catching up, so a backlog never makes one huge batch.
    max_offsets_per_trigger: int | None = 500_000
    # Billing data: an offset that expired before we read it must stop the job, not be
    # skipped silently. The reconciler would report it as missing_in_archive anyway.
    fail_on_data_loss: bool = True


def read_views(spark: "SparkSession", settings: Settings, options: SourceOptions, *,
               headers: bool = False) -> "DataFrame":
    """The topic's records; their headers only with ``headers`` (the archiver keeps them):
    the source converts every record's headers into each row it reads, whether or not a
    later step selects them."""
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_reader_options(settings))
        .option("subscribe", settings.views_topic)
        .option("startingOffsets", options.starting_offsets)
        .option("failOnDataLoss", str(options.fail_on_data_loss).lower())
        .option("includeHeaders", str(headers).lower())
    )
    if options.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    return reader.load()
