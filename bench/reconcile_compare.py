"""The reconcile comparison (speed vs batch cells, full outer) beside DuckDB on the same files.

Writes two Parquet sets of N cells each with DuckDB (100,000 videos x N/100,000 minutes;
the speed side lacks every 5,003rd cell, has +1 on every 3,001st and 1,000 cells the
batch lacks: a few thousand divergent cells), then times, in the same run:

- ours: ``reconcile.compare.divergent_cells`` (what ``reconcile.pipeline.reconcile_day``
  calls) on the session ``viewcount reconcile`` builds (``reconcile.command.reconcile_session``;
  the divergent cells persisted and counted, the day's totals observed in the same pass),
  twice (the first run pays the JVM's warm-up);
- the Spark floor: the plainest Spark job for the same comparison, written here: read both
  files, full outer join on (video, minute), keep the cells missing on one side or with
  different views, into Spark's ``noop`` sink; on the same session, each of its runs after
  one of ours (so both second runs are warm). The divergent cells and their |delta| views
  come from an ``observe`` on its output (the divergent cells only, a few thousand rows);
- DuckDB: the same full outer join of the same files, the divergent cells into a table
  and the same totals (two queries).

All must agree on the divergent cells (ours and DuckDB on every total as well; the exit
status is 1 when they do not). The script prints ours against the floor as a rate ratio
(floor seconds / ours, second runs; the goal is at least 0.7) and against DuckDB as a
time ratio. ``make test`` runs it at 20,000 cells (tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/reconcile_compare.py --cells 10000000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

VIDEOS = 100_000
CELLS_SQL = """
SELECT 'video-' || lpad(CAST(i % {videos} AS VARCHAR), 6, '0') AS video_id,
       TIMESTAMPTZ '2026-11-20 00:00:00+00' + to_minutes(CAST(i // {videos} AS BIGINT)) AS minute,
       CAST(1 + hash(i) % 50 AS BIGINT) + {bump} AS views
FROM range({start}, {end}) t(i) {where}
"""
TOTALS_SQL = """
SELECT count(*), count(*) FILTER (WHERE delta <> 0), sum(speed), sum(batch), sum(abs(delta)) FROM (
  SELECT coalesce(s.views, 0) AS speed, coalesce(b.views, 0) AS batch, coalesce(s.views, 0) - coalesce(b.views, 0)
         AS delta FROM read_parquet('{speed}') s FULL OUTER JOIN read_parquet('{batch}') b USING (video_id, minute))
"""
DIVERGENT_SQL = """
CREATE OR REPLACE TEMP TABLE divergent AS
SELECT video_id, minute, coalesce(s.views, 0) AS speed, coalesce(b.views, 0) AS batch,
       coalesce(s.views, 0) - coalesce(b.views, 0) AS delta
FROM read_parquet('{speed}') s FULL OUTER JOIN read_parquet('{batch}') b USING (video_id, minute)
WHERE coalesce(s.views, 0) <> coalesce(b.views, 0)
"""


def write_cells(folder: Path, cells: int) -> tuple[str, str]:
    speed, batch = folder / "speed.parquet", folder / "batch.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    both = CELLS_SQL.format(videos=VIDEOS, start=0, end=cells, bump="{bump}", where="{where}")
    con.execute(f"COPY ({both.format(bump='0', where='')}) TO '{batch}' (FORMAT parquet)")
    speed_cells = both.format(bump="CASE WHEN i % 3001 = 0 THEN 1 ELSE 0 END", where="WHERE i % 5003 <> 0")
    speed_only = CELLS_SQL.format(videos=VIDEOS, start=cells, end=cells + 1000, bump="0", where="")
    con.execute(f"COPY ({speed_cells} UNION ALL {speed_only}) TO '{speed}' (FORMAT parquet)")
    con.close()
    return str(speed), str(batch)


def time_ours(spark, speed: str, batch: str) -> tuple[float, tuple]:
    from reconcile.compare import divergent_cells

    started = time.perf_counter()
    divergent, totals = divergent_cells(spark.read.parquet(speed), spark.read.parquet(batch))
    elapsed = time.perf_counter() - started
    divergent.unpersist()
    return elapsed, (totals.cells_compared, totals.cells_divergent, totals.views_speed, totals.views_batch,
                     totals.abs_delta_views)


def floor_divergent(spark, speed: str, batch: str) -> DataFrame:
    """The plainest Spark job for the comparison: the cells whose views differ, per side."""
    from pyspark.sql import functions as F

    speed_cells = spark.read.parquet(speed).select("video_id", "minute", F.col("views").alias("speed"))
    batch_cells = spark.read.parquet(batch).select("video_id", "minute", F.col("views").alias("batch"))
    delta = F.coalesce(F.col("speed"), F.lit(0)) - F.coalesce(F.col("batch"), F.lit(0))
    return (
        speed_cells.join(batch_cells, on=["video_id", "minute"], how="full")
        .select("video_id", "minute", "speed", "batch", delta.alias("delta"))
        .where(F.col("delta") != 0)
    )


def time_floor(spark, speed: str, batch: str) -> tuple[float, tuple]:
    """The floor into the noop sink; its divergent cells and |delta| views observed."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    totals = Observation("floor")
    started = time.perf_counter()
    (floor_divergent(spark, speed, batch)
     .observe(totals, F.count(F.lit(1)).alias("divergent"), F.coalesce(F.sum(F.abs("delta")), F.lit(0)).alias("abs_delta"))
     .write.format("noop").mode("overwrite").save())
    elapsed = time.perf_counter() - started
    return elapsed, (totals.get["divergent"], totals.get["abs_delta"])


def time_duckdb(speed: str, batch: str) -> tuple[float, tuple]:
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(DIVERGENT_SQL.format(speed=speed, batch=batch))
    totals = con.execute(TOTALS_SQL.format(speed=speed, batch=batch)).fetchone()
    elapsed = time.perf_counter() - started
    assert con.execute("SELECT count(*) FROM divergent").fetchone()[0] == totals[1]
    con.close()
    return elapsed, tuple(int(value) for value in totals)


def report(runs: list, floor_runs: list, reference: tuple) -> bool:
    """Prints the runs side by side; True when ours, the floor and DuckDB agree."""
    compared, divergent, *_, abs_delta = reference[1]
    if any(result != reference[1] for _, result in runs) or any(
            result != (divergent, abs_delta) for _, result in floor_runs):
        print(f"results DIFFER: ours {[result for _, result in runs]}, DuckDB {reference[1]} "
              "(cells compared, divergent, speed views, batch views, |delta| views); "
              f"Spark floor {[result for _, result in floor_runs]} (divergent, |delta| views)")
        return False
    print(f"cells compared {compared:,}, divergent {divergent:,}; results identical (ours, the Spark floor, DuckDB)")
    for name, measured in (("reconcile comparison", runs), ("Spark floor (noop)", floor_runs)):
        for number, (seconds, _) in enumerate(measured, start=1):
            print(f"{name + ' run ' + str(number) + ':':30} {seconds:6.1f} s  ({compared / seconds:,.0f} cells/s)")
    print(f"{'DuckDB full outer join:':30} {reference[0]:6.1f} s  ({compared / reference[0]:,.0f} cells/s)")
    print(f"ours / floor (run 2): {floor_runs[1][0] / runs[1][0]:.2f}x the floor's rate "
          "(floor seconds / ours; goal >= 0.7)")
    print(f"ratio (ours run 2 / DuckDB): {runs[1][0] / reference[0]:.1f}x")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000_000, help="cells per side (default: %(default)s)")
    parser.add_argument("--dir", type=Path, help="where the Parquet files go (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        speed, batch = write_cells(folder, args.cells)
        print(f"wrote 2 x {args.cells:,} cells in {time.perf_counter() - started:.1f} s ({folder})", flush=True)
        from reconcile.command import reconcile_session
        from settings.environment import ReconcileKnobs, Settings

        started = time.perf_counter()
        spark = reconcile_session(Settings.from_env(), None, ReconcileKnobs.from_env())
        print(f"Spark session started in {time.perf_counter() - started:.1f} s (not counted)", flush=True)
        runs, floor_runs = [], []
        for _ in range(2):  # ours then the floor, twice: each second run warm, on the same load
            runs.append(time_ours(spark, speed, batch))
            floor_runs.append(time_floor(spark, speed, batch))
        spark.stop()
        reference = time_duckdb(speed, batch)
        if not report(runs, floor_runs, reference):
            return 1
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
