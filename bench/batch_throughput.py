"""Batch layer throughput: one day recomputed from a synthetic archive, beside DuckDB.

Writes N archive records (the archiver's columns and ``arrival_date/arrival_hour/batch_id``
layout) as Parquet with DuckDB: one UTC day of Zipf-popular views, a share of re-sent
events (same bytes, later arrival) and a share of invalid records. Then, in the same run,
times:

- ours: what ``viewcount batch`` runs, through its own entry points
  (``batch_layer.job.batch_session`` and ``count_window``: the window's hour folders, the
  archive tallies, the cached parsed events, the counts, the day's statistics; then the
  top videos) on local[2]; no archive_hours check, no Cassandra or S3 writes;
- the Spark floor: the plainest Spark job for the same count, written here, not taken from
  ``batch_layer``: read the window's archive files, ``from_json`` with a plain schema,
  keep the events of the day (event id and video id present, event_time parseable and in
  the day), ``dropDuplicates`` per (video, minute, event id), count per (video, minute),
  into Spark's ``noop`` sink; on the same session settings as ours (``batch_session``:
  master, shuffle partitions, driver), in a process of its own, so that it too is timed
  in a fresh JVM once its session is up. Its cells and views come from an ``observe`` on
  its output cells (not on the events: one pass over the cells after the last aggregate);
- DuckDB: the same count in SQL over the same files (JSON parse, validity filter,
  distinct event_id per video-minute, count), with as many threads as Spark has cores.

All three must agree on cells and views (the exit status is 1 when they do not; the floor's
plain rules suffice for what the generator writes); the script prints their times, ours
against the floor as a rate ratio (floor seconds / ours; the goal is at least 0.7) and
against DuckDB as a time ratio (DuckDB runs before and after the two Spark jobs, and its
mean time counts), and the CPU seconds each used, which a shared machine's load disturbs
less than wall time. ``make test`` runs it at 20,000 records
(tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/batch_throughput.py --events 20000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from counting.window import BatchWindow

DAY = dt.date(2026, 11, 20)
VIDEOS = 10_000
CORES = 2

# One SQL statement writes the archive. Record i arrives at i/N of the day; every 50th
# re-sends the view of an earlier record (same event), every 200th is invalid (one of
# four reasons in turn). Video popularity is Zipf-like (the cube of a uniform draw).
ARCHIVE_SQL = """
COPY (
  WITH records AS (
    SELECT i,
           CASE WHEN hash(i) % 50 = 0 AND i > 1000 THEN i - 1 - hash(i + 7) % 1000 ELSE i END AS view,
           TIMESTAMPTZ '{day} 00:00:00+00' + to_microseconds((i * 86400000000 // {events})::BIGINT) AS arrival
    FROM range({events}) AS t(i)
  ), views AS (
    SELECT i, arrival, view,
           'v' || (floor({videos} * pow((hash(view) % 1000003) / 1000003.0, 3)))::BIGINT AS video_id,
           printf('%016x-%016x', hash(view), hash(view + {events})) AS event_id,
           TIMESTAMPTZ '{day} 00:00:00+00'
             + to_microseconds((view * 86400000000 // {events})::BIGINT - (hash(view) % 3000000)::BIGINT) AS event_time
    FROM records
  )
  SELECT 'views' AS topic, (hash(video_id) % 6)::INTEGER AS "partition", i AS "offset",
         arrival AS kafka_timestamp, 0 AS timestamp_type, encode(video_id) AS key,
         encode(CASE
           WHEN i % 200 = 1 THEN '{{"event_id":"' || event_id || '","video_id":"' || video_id || '"'
           WHEN i % 800 = 3 THEN '{{"video_id":"' || video_id || '","event_time":"2026-11-20T10:00:00Z"}}'
           WHEN i % 800 = 203 THEN '{{"event_id":"' || event_id || '","video_id":"bad id!","event_time":1}}'
           WHEN i % 800 = 403 THEN '{{"event_id":"' || event_id || '","video_id":"' || video_id
                                    || '","event_time":"2099-01-01T00:00:00Z"}}'
           WHEN view % 4 = 0 THEN '{{"event_id":"' || event_id || '","video_id":"' || video_id
                                    || '","event_time":' || epoch_ms(event_time) || ',"user_id":"u' || view % 99991 || '"}}'
           ELSE '{{"event_id":"' || event_id || '","video_id":"' || video_id || '","event_time":"'
                || strftime(event_time, '%Y-%m-%dT%H:%M:%S.%gZ') || '","user_id":"u' || view % 99991 || '"}}'
         END) AS value,
         []::STRUCT(key VARCHAR, value BLOB)[] AS headers,
         CAST(arrival AS DATE) AS arrival_date, hour(arrival) AS arrival_hour,
         (hour(arrival) * 6 + minute(arrival) // 10) AS batch_id
  FROM views
) TO '{path}' (FORMAT parquet, PARTITION_BY (arrival_date, arrival_hour, batch_id), OVERWRITE_OR_IGNORE)
"""

# The counting rules in DuckDB's dialect, for this data: strict enough for what the
# generator writes (objects, string ids, RFC 3339 or epoch-ms times), not a second
# implementation of every rule.
DUCKDB_COUNT_SQL = """
WITH parsed AS (
  SELECT kafka_timestamp, json_extract_string(doc, '$.event_id') AS event_id,
         json_extract_string(doc, '$.video_id') AS video_id,
         CASE json_type(doc, '$.event_time')
           WHEN 'UBIGINT' THEN make_timestamptz(json_extract(doc, '$.event_time')::BIGINT * 1000)
           WHEN 'BIGINT' THEN make_timestamptz(json_extract(doc, '$.event_time')::BIGINT * 1000)
           WHEN 'VARCHAR' THEN TRY_CAST(json_extract_string(doc, '$.event_time') AS TIMESTAMPTZ)
         END AS event_time
  FROM (SELECT kafka_timestamp, CASE WHEN json_valid(decode(value)) THEN decode(value)::JSON END AS doc
        FROM read_parquet('{path}/**/*.parquet')
        WHERE kafka_timestamp >= TIMESTAMPTZ '{start}' AND kafka_timestamp < TIMESTAMPTZ '{cutoff}')
), valid AS (
  SELECT * FROM parsed
  WHERE length(event_id) BETWEEN 1 AND 64 AND regexp_full_match(video_id, '[A-Za-z0-9_-]{{1,64}}')
    AND event_time <= kafka_timestamp + INTERVAL 5 MINUTE
    AND event_time >= TIMESTAMPTZ '{day_start}' AND event_time < TIMESTAMPTZ '{day_end}'
)
SELECT count(*) AS cells, sum(views)::BIGINT AS views FROM (
  SELECT video_id, time_bucket(INTERVAL 1 MINUTE, event_time) AS minute, count(DISTINCT event_id) AS views
  FROM valid GROUP BY ALL)
"""


def write_archive(path: Path, events: int) -> float:
    import duckdb

    started = time.perf_counter()
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(ARCHIVE_SQL.format(day=DAY, events=events, videos=VIDEOS, path=path))
    return time.perf_counter() - started


def _jvm_cpu_seconds(spark) -> float | None:
    """CPU time of the Spark JVM (driver and local executors), from /proc; None elsewhere."""
    stat = Path(f"/proc/{spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_batch(path: Path) -> tuple[float, float | None, int, int]:
    from batch_layer.job import batch_session, count_window
    from batch_layer.recompute import top_videos_by_views
    from counting.window import BatchWindow
    from settings.environment import Settings

    spark = batch_session(Settings.from_env(), f"local[{CORES}]")
    try:
        window = BatchWindow(DAY)
        started, cpu_started = time.perf_counter(), _jvm_cpu_seconds(spark)
        # No archive_hours rows for these files: the check against them is skipped.
        counts, _, stats = count_window(spark, f"file://{path}", window, completeness=None)
        top_videos_by_views(counts)
        cpu = None if cpu_started is None else _jvm_cpu_seconds(spark) - cpu_started
        return time.perf_counter() - started, cpu, stats.cells, stats.total_views
    finally:
        spark.stop()


# The floor reads every field as text: event_time is RFC 3339 text or epoch milliseconds (a
# JSON number, which from_json hands to a string field as its digits).
FLOOR_SCHEMA = "event_id STRING, video_id STRING, event_time STRING"


def floor_counts(spark: SparkSession, path: Path, window: BatchWindow) -> DataFrame:
    """The plainest Spark job for the day's count: views per (video, minute)."""
    from pyspark.sql import functions as F

    arrival = F.col("kafka_timestamp")
    arrived_in_window = (F.col("arrival_date").isin(window.dates()) & (arrival >= F.lit(window.start))
                         & (arrival < F.lit(window.cutoff)))
    time_text = F.col("event.event_time")
    event_time = F.coalesce(F.timestamp_millis(time_text.try_cast("bigint")), F.try_to_timestamp(time_text))
    events = (
        spark.read.parquet(f"file://{path}")
        .where(arrived_in_window)
        .select(F.from_json(F.col("value").cast("string"), FLOOR_SCHEMA).alias("event"))
        .select("event.event_id", "event.video_id", event_time.alias("event_time"))
    )
    is_countable_in_day = (F.col("event_id").isNotNull() & F.col("video_id").isNotNull()
                           & (F.col("event_time") >= F.lit(window.day_start))
                           & (F.col("event_time") < F.lit(window.day_end)))
    return (
        events.where(is_countable_in_day)
        .select("video_id", F.date_trunc("minute", "event_time").alias("minute"), "event_id")
        .dropDuplicates(["video_id", "minute", "event_id"])
        .groupBy("video_id", "minute").count()
    )


def time_floor(path: Path) -> tuple[float, float | None, int, int]:
    """The floor into the noop sink, timed as ours is: on a session already up, once."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from batch_layer.job import batch_session
    from counting.window import BatchWindow
    from settings.environment import Settings

    spark = batch_session(Settings.from_env(), f"local[{CORES}]")  # ours' settings, not its code
    try:
        totals = Observation("floor")
        started, cpu_started = time.perf_counter(), _jvm_cpu_seconds(spark)
        (floor_counts(spark, path, BatchWindow(DAY))
         .observe(totals, F.count(F.lit(1)).alias("cells"), F.coalesce(F.sum("count"), F.lit(0)).alias("views"))
         .write.format("noop").mode("overwrite").save())
        elapsed = time.perf_counter() - started
        cpu = None if cpu_started is None else _jvm_cpu_seconds(spark) - cpu_started
        return elapsed, cpu, totals.get["cells"], totals.get["views"]
    finally:
        spark.stop()


def time_floor_apart(path: Path) -> tuple[float, float | None, int, int]:
    """``time_floor`` in a process of its own: a JVM as fresh as the one ours ran in."""
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--floor-of", str(path)],
                            stdout=subprocess.PIPE, text=True, check=True)
    return tuple(json.loads(result.stdout.splitlines()[-1]))


def time_duckdb(path: Path) -> tuple[float, float, int, int]:
    import duckdb

    from counting.window import BatchWindow

    window = BatchWindow(DAY)
    connection = duckdb.connect()
    connection.execute(f"SET threads = {CORES}")
    connection.execute("SET TimeZone = 'UTC'")
    started, cpu_started = time.perf_counter(), time.process_time()  # DuckDB runs in this process
    cells, views = connection.execute(DUCKDB_COUNT_SQL.format(
        path=path, start=window.start, cutoff=window.cutoff, day_start=window.day_start,
        day_end=window.day_end)).fetchone()
    return time.perf_counter() - started, time.process_time() - cpu_started, cells, views


def report(events: int, ours: tuple, floor: tuple, duck: tuple, duck_after: float) -> bool:
    """Prints the three runs side by side; True when all three give the same cells and views."""
    (ours_seconds, ours_cpu, cells, views), (floor_seconds, floor_cpu, *floor_result) = ours, floor
    duck_before, duck_cpu, *duck_result = duck
    agree = [cells, views] == floor_result == duck_result
    print(f"records: {events:,}; cells {cells:,}, views {views:,} " + (
        "(same as DuckDB and the Spark floor)" if agree else
        f"(DuckDB: {duck_result[0]:,} cells, {duck_result[1]:,} views; "
        f"Spark floor: {floor_result[0]:,} cells, {floor_result[1]:,} views)"))
    duck_seconds = (duck_before + duck_after) / 2
    for name, seconds, note in ((f"batch layer (Spark local[{CORES}])", ours_seconds, ""),
                                (f"Spark floor (local[{CORES}], noop)", floor_seconds, ""),
                                (f"DuckDB ({CORES} threads)", duck_seconds,
                                 f"; {duck_before:.1f} s before ours, {duck_after:.1f} s after")):
        print(f"{name + ':':34} {seconds:7.1f} s ({events / seconds:,.0f} records/s{note})")
    print(f"ours / floor: {floor_seconds / ours_seconds:.2f}x the floor's rate (floor seconds / ours; goal >= 0.7)")
    print(f"ratio batch / DuckDB: {ours_seconds / duck_seconds:.2f} (target <= 3)")
    if ours_cpu is not None and floor_cpu is not None:  # CPU time drifts less than wall time on a shared machine
        print(f"CPU seconds: batch layer {ours_cpu:.1f}, Spark floor {floor_cpu:.1f}, DuckDB {duck_cpu:.1f} "
              f"(first run); ours / floor {ours_cpu / floor_cpu:.2f}, ours / DuckDB {ours_cpu / duck_cpu:.2f}")
    return agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000_000, help="archive records (default: %(default)s)")
    parser.add_argument("--dir", type=Path, help="where the archive goes (default: a temporary folder, removed)")
    parser.add_argument("--reuse", action="store_true", help="use the archive already in --dir")
    parser.add_argument("--floor-of", type=Path, help=argparse.SUPPRESS)  # time_floor_apart's own process
    args = parser.parse_args(argv)
    if args.floor_of:
        print(json.dumps(time_floor(args.floor_of)))
        return 0
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    path = folder.resolve() / "archive"  # file:// URIs need an absolute path
    try:
        if not args.reuse:
            shutil.rmtree(path, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            print(f"writing {args.events:,} archive records to {path} ...", file=sys.stderr)
            print(f"archive written in {write_archive(path, args.events):.1f} s", file=sys.stderr)
        # DuckDB before and after the Spark jobs: on a shared machine the load drifts during a run.
        duck = time_duckdb(path)
        ours = time_batch(path)
        floor = time_floor_apart(path)
        duck_after, _, _, _ = time_duckdb(path)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if report(args.events, ours, floor, duck, duck_after) else 1


if __name__ == "__main__":
    sys.exit(main())
