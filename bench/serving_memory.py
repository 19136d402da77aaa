"""Memory and garbage-collector cost of an API worker's held provisional partitions.

In one process, no servers: a ``serving.live.LiveFeed`` is filled with ``--partitions``
(video, day) partitions of ``--minutes`` minutes each, as reads from Cassandra fill it
(``LiveFeed.fill``), then kept current by ``--cells`` pushed cells (``LiveFeed._apply``).
Prints the resident memory it added (MiB, and bytes per partition and per minute), the
objects the cyclic garbage collector tracks before and after, and the time of a full
collection (``gc.collect()``) with the partitions held beside the same with none: the
pause a worker's requests can meet. Then a sample of the held partitions must answer, per
minute and for the whole day, what the same fill and pushes give replayed in plain dicts
(exit status 1 otherwise). ``make test`` runs it at 200 partitions
(tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/serving_memory.py --partitions 100000 --minutes 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import statistics
import time
from collections.abc import Iterator

import psutil

from serving.live import FOLLOWING, MINUTE, LiveFeed, LiveRows
from storage.cell_feed import Cell
from settings.environment import Settings

DAY = dt.date(2026, 12, 7)


def full_collection_ms(repeats: int = 5) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        gc.collect()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def filled(rng: random.Random, args) -> Iterator[tuple[tuple[str, dt.date], list[tuple]]]:
    """Each partition as a read from Cassandra fills it: (key, rows of minute, views, write timestamp)."""
    midnight = dt.datetime.combine(DAY, dt.time())
    for number in range(args.partitions):
        minutes = sorted(rng.sample(range(1440), args.minutes))
        yield (f"video-{number:07d}", DAY), [(midnight + dt.timedelta(minutes=minute), rng.randint(1, 500), 1)
                                             for minute in minutes]


def pushed(rng: random.Random, args) -> list[Cell]:
    """The cells the follower applies after the fill (newer write timestamps)."""
    return [Cell(f"video-{rng.randrange(args.partitions):07d}", DAY, rng.randrange(1440), rng.randint(1, 500), 2)
            for _ in range(args.cells)]


def agrees(feed: LiveFeed, args, sample: int = 1000) -> bool:
    """Every ``partitions // sample``-th partition as the feed answers it (each minute, the
    whole day) against the same fill and pushes replayed in plain dicts (a newer or equal
    write timestamp wins)."""
    rng, step = random.Random(1), max(1, args.partitions // sample)
    expected = {key: {(minute - dt.datetime.combine(DAY, dt.time())) // MINUTE: views for minute, views, _ in rows}
                for number, (key, rows) in enumerate(filled(rng, args)) if number % step == 0}
    for cell in pushed(rng, args):
        if (cell.video_id, cell.day) in expected:
            expected[(cell.video_id, cell.day)][cell.minute_of_day] = cell.views
    midnight = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.timezone.utc)
    day_end = midnight + dt.timedelta(days=1)
    wrong = 0
    for key, minutes in expected.items():
        rows = LiveRows(DAY, feed._held[key])
        answered = [((at - midnight) // MINUTE, views) for at, views in rows.points_in(midnight, day_end)]
        wrong += answered != sorted(minutes.items()) or rows.views_in(midnight, day_end) != sum(minutes.values())
    print(f"answers of {len(expected):,} partitions against the replayed fill and pushes: "
          + ("agree" if not wrong else f"{wrong:,} DISAGREE"))
    return not wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=300, help="minutes with views per partition")
    parser.add_argument("--cells", type=int, default=1_000_000, help="cells pushed after the fill")
    args = parser.parse_args()

    process = psutil.Process()
    rng = random.Random(1)
    gc.collect()
    empty_ms, tracked_before = full_collection_ms(), len(gc.get_objects())
    rss_before = process.memory_info().rss

    feed = LiveFeed(Settings.defaults(), max_partitions=args.partitions, max_lag_s=1.0)
    feed.state = FOLLOWING
    started = time.perf_counter()
    for key, rows in filled(rng, args):
        feed.fill(key, rows, feed.begin_fill(key))
    fill_s = time.perf_counter() - started
    cells = pushed(rng, args)
    started = time.perf_counter()
    for at in range(0, len(cells), 1000):
        feed._apply(cells[at:at + 1000], feed._epoch)
    apply_s = time.perf_counter() - started
    del cells
    gc.collect()
    rss = process.memory_info().rss - rss_before
    held_minutes = sum(len(held[0]) // 2 for held in feed._held.values())
    full_ms, tracked = full_collection_ms(), len(gc.get_objects())

    print(f"held: {len(feed):,} partitions, {held_minutes:,} minutes (filled in {fill_s:.1f} s; "
          f"{args.cells:,} pushed cells applied in {apply_s:.2f} s, {apply_s / max(args.cells, 1) * 1e6:.2f} µs each)")
    print(f"resident memory added: {rss / 2**20:,.0f} MiB; {rss / max(len(feed), 1):,.0f} bytes per partition, "
          f"{rss / max(held_minutes, 1):.1f} per minute")
    print(f"objects tracked by the cyclic GC: {tracked_before:,} before, {tracked:,} holding them")
    print(f"full collection (gc.collect): {full_ms:.1f} ms holding them, {empty_ms:.1f} ms empty")
    return 0 if agrees(feed, args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
