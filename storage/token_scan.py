"""A whole Cassandra table as a Spark DataFrame, read by token ranges from the executors.

The speed table is partitioned by (video_id, day), so day D's cells are spread over the
whole ring: no query can select "every partition of day D". The ring (Murmur3 tokens,
-2**63 .. 2**63-1) is cut into equal ranges, each read with one prepared statement
``WHERE token(pk) > ? AND token(pk) <= ?``, paged; Spark tasks take a share of the
ranges each and keep several in flight, each executor reusing one Cassandra session.
``keep`` drops rows on the executors (e.g. other days), so only wanted rows travel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from settings.environment import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1
DEFAULT_RANGES = 512
RANGES_IN_FLIGHT = 8
PAGE_SIZE = 5_000


@dataclass(frozen=True)
class TableScan:
    """``SELECT <columns> FROM <table>`` by token ranges of ``partition_key``."""

    table: str
    partition_key: tuple[str, ...]
    columns: tuple[str, ...]

    def statement(self) -> str:
        token = f"token({', '.join(self.partition_key)})"
        return (f"SELECT {', '.join(self.columns)} FROM {self.table}"
                f" WHERE {token} > ? AND {token} <= ?")


def token_ranges(count: int) -> list[tuple[int, int]]:
    """``count`` contiguous (start, end] ranges covering the whole Murmur3 ring.

    The minimum token itself is never owned by a key (Murmur3 maps it to the maximum), so
    the first range starting after it loses nothing."""
    span = (MAX_TOKEN - MIN_TOKEN) // count
    bounds = [MIN_TOKEN + span * index for index in range(count)] + [MAX_TOKEN]
    return list(zip(bounds[:-1], bounds[1:]))


def _scan_ranges(settings: Settings, scan: TableScan, keep: Callable, ranges: Iterable[tuple[int, int]]) -> Iterator:
    from cassandra.concurrent import execute_concurrent_with_args

    from storage.cassandra import cached_session

    session = cached_session(settings)
    statement = session.prepare(scan.statement())
    statement.fetch_size = PAGE_SIZE
    results = execute_concurrent_with_args(session, statement, list(ranges), concurrency=RANGES_IN_FLIGHT,
                                           raise_on_first_error=True, results_generator=True)
    for _, rows in results:
        for row in rows:  # further pages are fetched as the rows are consumed
            kept = keep(row)
            if kept is not None:
                yield kept


def scan_table(spark: "SparkSession", settings: Settings, scan: TableScan, keep: Callable,
               schema: "StructType", *, ranges: int = DEFAULT_RANGES) -> "DataFrame":
    """The rows ``keep(row)`` turns into tuples of ``schema`` (None drops a row).

    ``keep`` must be a module-level function (or a partial of one): it runs on the
    executors."""
    slices = max(1, min(ranges, spark.sparkContext.defaultParallelism * 4))
    rdd = spark.sparkContext.parallelize(token_ranges(ranges), slices).mapPartitions(
        partial(_scan_ranges, settings, scan, keep))
    return spark.createDataFrame(rdd, schema)
