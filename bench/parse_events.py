"""``parse_events()`` against Spark's lenient JSON parsing of the same values, side by side.

Both read the same cached, in-memory DataFrame shaped like Spark's Kafka source (realistic
records from the project's generator: Zipf videos, re-sends, late and malformed records)
and end in an aggregate, so nothing they compute is pruned:

- ours: ``parse_events()`` (strict JSON, typed fields, RFC 3339 or epoch-ms event_time,
  every rule with its reason code), then a count of rows per reason;
- reference: ``from_json`` with a fixed schema of four string fields (lenient: no strict
  JSON, no types, no rules) plus ``try_to_timestamp`` of event_time, then a count per
  (video_id is NULL, event_time is NULL).

The two are timed alternately, several times, in the same session: the machine is shared,
so only figures from the same run are compared. Before timing, both must have read every
record, and every record ours counts valid must have a video id for the reference too
(exit status 1 otherwise). ``make test`` runs it at 2,000 events, once
(tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/parse_events.py [--events 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from counting.events import parse_events  # noqa: E402
from settings.environment import Settings  # noqa: E402
from spark_runtime.session import build_session  # noqa: E402
from producer.arrivals import DayArrivals  # noqa: E402
from producer.generator import Mix, ViewGenerator  # noqa: E402

KAFKA_SCHEMA = "key binary, value binary, topic string, partition int, offset long, ts long"
REFERENCE_SCHEMA = "event_id string, video_id string, event_time string, user_id string"
DAY = date(2026, 11, 20)
SEED = 7


def kafka_records(spark: SparkSession, events: int) -> DataFrame:
    """``events`` generated records as Kafka source rows, cached and materialised."""
    mix = Mix(videos=10_000, zipf=1.1, duplicates=0.02, late=0.01, malformed=0.005)
    generated = ViewGenerator(mix, SEED, DayArrivals(DAY, events, SEED)).chunk(events)
    rows = [(r.key, r.value, "views", 0, offset, r.timestamp_ms) for offset, r in enumerate(generated)]
    records = (
        spark.createDataFrame(rows, KAFKA_SCHEMA)
        .selectExpr("key", "value", "topic", "partition", "offset", "timestamp_millis(ts) AS timestamp")
        .cache()
    )
    records.count()
    return records


def ours(records: DataFrame) -> list:
    return records.transform(parse_events()).groupBy("reason").count().collect()


def reference(records: DataFrame) -> list:
    fields = F.from_json(F.col("value").cast("string"), REFERENCE_SCHEMA)
    parsed = records.select(
        fields.getField("video_id").alias("video_id"),
        F.try_to_timestamp(fields.getField("event_time")).alias("event_time"),
    )
    keys = [F.col("video_id").isNull().alias("no_video"), F.col("event_time").isNull().alias("no_time")]
    return parsed.groupBy(*keys).count().collect()


def agrees(reasons: dict[str, int], lenient: list, events: int) -> bool:
    """Both read every record, and every record ours counts valid has a video id for the
    lenient parse too (it accepts more, never less; its event time misses epoch-ms ones)."""
    read = sum(row["count"] for row in lenient)
    with_video = sum(row["count"] for row in lenient if not row.no_video)
    ok = sum(reasons.values()) == read == events and reasons.get("valid", 0) <= with_video
    print(f"records read: ours {sum(reasons.values()):,}, reference {read:,} of {events:,}; valid for ours "
          f"{reasons.get('valid', 0):,} <= with a video id for the reference {with_video:,}: "
          + ("agree" if ok else "DISAGREE"), flush=True)
    return ok


def timed(run, records: DataFrame) -> float:
    started = time.perf_counter()
    run(records)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    spark = build_session("bench-parse", Settings.from_env(), with_connectors=False)
    records = kafka_records(spark, args.events)
    warm = {run: run(records) for run in (ours, reference)}  # warm-up: JIT, codegen, Python workers
    reasons = {row.reason or "valid": row["count"] for row in warm[ours]}
    print("reasons:", sorted(reasons.items()))
    if not agrees(reasons, warm[reference], args.events):
        return 1

    ours_s, reference_s = [], []
    for attempt in range(1, args.repeat + 1):
        ours_s.append(timed(ours, records))
        reference_s.append(timed(reference, records))
        print(f"run {attempt}: ours {ours_s[-1]:.2f} s, reference {reference_s[-1]:.2f} s, "
              f"ratio {ours_s[-1] / reference_s[-1]:.2f}")
    ours_median, reference_median = statistics.median(ours_s), statistics.median(reference_s)
    print(f"median of {args.repeat}: ours {ours_median:.2f} s ({args.events / ours_median:,.0f} records/s), "
          f"reference {reference_median:.2f} s ({args.events / reference_median:,.0f} records/s), "
          f"ratio {ours_median / reference_median:.2f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
