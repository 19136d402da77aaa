"""Cassandra write path of per-minute counts: one statement per row vs partition batches.

Writes the same cells (Zipf-popular videos over one day, as a replayed day produces) into
a scratch keyspace, twice each way, with the same session and concurrency, and prints
rows/s of both and their ratio. ``upsert_minute_counts`` is the grouped path the
counter and the batch layer use. Each write is read back (untimed), one more view per cell
than the write before: the table must hold exactly the rows and views written (exit
status 1 otherwise). ``make test`` runs it at 2,000 cells (tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/minute_writes.py --cells 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
import uuid
from dataclasses import replace

from storage.cassandra import apply_migrations, connect, drop_keyspace
from storage.minute_counts import (
    MinuteCount, read_every_minute_count, upsert_each_minute_count, upsert_minute_counts)
from settings.environment import Settings


def day_of_cells(cells: int, videos: int, seed: int) -> list[MinuteCount]:
    rng = random.Random(seed)
    weights = [1 / rank for rank in range(1, videos + 1)]
    midnight = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    keys: set[tuple[int, int]] = set()
    while len(keys) < cells:
        for video in rng.choices(range(videos), weights, k=cells - len(keys)):
            keys.add((video, rng.randrange(1440)))
    return [MinuteCount(f"video-{video:06d}", midnight + dt.timedelta(minutes=minute), 1 + video % 7)
            for video, minute in sorted(keys)]


def one_row_per_statement(session, rows: list[MinuteCount]) -> None:
    upsert_each_minute_count(session, rows)


def rate(write, session, rows) -> float:
    started = time.perf_counter()
    write(session, rows)
    return len(rows) / (time.perf_counter() - started)


def stored(session) -> tuple[int, int]:
    """(rows, views) of the scratch table, read back after a write (not timed)."""
    cells = read_every_minute_count(session)
    return len(cells), sum(cell.views for cell in cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200_000)
    parser.add_argument("--videos", type=int, default=20_000)
    args = parser.parse_args()
    settings = Settings.from_env().replaced(keyspace=f"bench_{uuid.uuid4().hex[:8]}")
    apply_migrations(settings)
    session = connect(settings)
    try:
        rows = day_of_cells(args.cells, args.videos, seed=1)
        partitions = len({(row.video_id, row.day) for row in rows})
        print(f"{len(rows):,} cells in {partitions:,} (video, day) partitions", flush=True)
        ways = {"one statement per row": one_row_per_statement,
                "partition batches (upsert_minute_counts)": upsert_minute_counts}
        results = {name: [] for name in ways}
        wrong = []
        for step in range(4):  # each way twice, in turn; every write one more view per cell than the last
            name, write = list(ways.items())[step % 2]
            written = [replace(row, views=row.views + step) for row in rows]
            results[name].append(rate(write, session, written))
            expected = (len(written), sum(row.views for row in written))
            if stored(session) != expected:
                wrong.append(f"{name}: read back {stored(session)} (rows, views), wrote {expected}")
        if wrong:
            print("rows read back DIFFER from the rows written:\n" + "\n".join(wrong))
            return 1
        print("every write read back: the same rows and views as written, both ways")
        best = {name: max(rates) for name, rates in results.items()}
        for name, value in best.items():
            print(f"{name:45s} {value:>10,.0f} rows/s (best of 2)")
        per_row, grouped = best.values()
        print(f"ratio grouped / per row: {grouped / per_row:.2f}")
    finally:
        drop_keyspace(settings)
        session.cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
