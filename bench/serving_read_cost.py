"""What one Cassandra read costs the API's process, by shape: CPU and wall time per
request, reads sent as serving sends them (prepared, token-aware, tuple rows, one page).

Run after ``bench/serving_latency.py`` has seeded its keyspace (``viewcount_bench``):
300-minute partitions of yesterday and today for ``bench-00000`` ...

    .venv/bin/python bench/serving_read_cost.py [--requests 600]

Shapes: a whole day (300 rows); one row (what a day-total row would cost); two days as
two parallel reads (serving's window today); two days as one ``IN`` read. Each read must
return the rows seeded (``--minutes`` a day; exit status 1 otherwise). ``make test`` runs
it on the keyspace its smoke run of serving_latency.py seeded
(tests/integration/test_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from serving_load import bench_days, bench_settings  # this folder: the seeded keyspace and days
from storage.cassandra import connect
from storage.minute_counts import SPEED_DAY_READ, SPEED_TWO_DAYS_READ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per shape (after as many to warm up)")
    parser.add_argument("--videos", type=int, default=2000, help="videos seeded (serving_latency.py --videos)")
    parser.add_argument("--minutes", type=int, default=300,
                        help="minutes with views per video and day seeded (serving_latency.py --minutes)")
    args = parser.parse_args(argv)
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    session = connect(bench_settings())
    profile = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
    _, yesterday, today = bench_days()
    one_day = SPEED_DAY_READ
    # Rows each shape must read: today's partitions may hold a few more minutes (the
    # latency bench's stand-in writes the current minute).
    shapes = {
        f"whole day ({args.minutes} rows)": (one_day, lambda video: [(video, yesterday)],
                                             lambda rows: rows == args.minutes),
        "one row": (one_day + " LIMIT 1", lambda video: [(video, yesterday)], lambda rows: rows == 1),
        "two days, two reads": (one_day, lambda video: [(video, yesterday), (video, today)],
                                lambda rows: rows >= 2 * args.minutes),
        "two days, one IN read": (SPEED_TWO_DAYS_READ,
                                  lambda video: [(video, yesterday, today)], lambda rows: rows >= 2 * args.minutes),
    }
    wrong = []
    print(f"{'shape':<24}{'CPU ms/request':>16}{'wall ms/request':>17}{'rows/request':>14}")
    for name, (cql, parameters, expected) in shapes.items():
        statement = session.prepare(cql)
        statement.fetch_size = None
        for measured in (False, True):
            cpu, wall, rows = time.process_time(), time.perf_counter(), 0
            for number in range(args.requests):
                futures = [session.execute_async(statement, values, execution_profile=profile)
                           for values in parameters(f"bench-{number % args.videos:05d}")]
                read = sum(len(list(future.result())) for future in futures)
                rows += read
                if not expected(read):
                    wrong.append(f"{name}: bench-{number % args.videos:05d} read {read} rows")
            if measured:
                print(f"{name:<24}{1000 * (time.process_time() - cpu) / args.requests:>16.3f}"
                      f"{1000 * (time.perf_counter() - wall) / args.requests:>17.2f}{rows / args.requests:>14.0f}")
    session.cluster.shutdown()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("rows read per shape: " + (f"{len(wrong):,} requests DISAGREE with the seeded rows, e.g. {wrong[0]}"
                                     if wrong else "agree with the seeded rows"))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
