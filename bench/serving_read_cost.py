"""What one Cassandra read costs the API's process, by shape: CPU and wall time per
request, reads sent as serving sends them (prepared, token-aware, tuple rows, one page).

Run after ``bench/serving_latency.py`` has seeded its keyspace (``viewcount_bench``):
300-minute partitions of yesterday and today for ``bench-00000`` ...

    .venv/bin/python bench/serving_read_cost.py [--requests 600]

Shapes: a whole day (300 rows); one row (what a day-total row would cost); two days as
two parallel reads (serving's window today); two days as one ``IN`` read.
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
    args = parser.parse_args(argv)
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    session = connect(bench_settings())
    profile = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
    _, yesterday, today = bench_days()
    one_day = SPEED_DAY_READ
    shapes = {
        "whole day (300 rows)": (one_day, lambda video: [(video, yesterday)]),
        "one row": (one_day + " LIMIT 1", lambda video: [(video, yesterday)]),
        "two days, two reads": (one_day, lambda video: [(video, yesterday), (video, today)]),
        "two days, one IN read": (SPEED_TWO_DAYS_READ,
                                  lambda video: [(video, yesterday, today)]),
    }
    print(f"{'shape':<24}{'CPU ms/request':>16}{'wall ms/request':>17}{'rows/request':>14}")
    for name, (cql, parameters) in shapes.items():
        statement = session.prepare(cql)
        statement.fetch_size = None
        for measured in (False, True):
            cpu, wall, rows = time.process_time(), time.perf_counter(), 0
            for number in range(args.requests):
                futures = [session.execute_async(statement, values, execution_profile=profile)
                           for values in parameters(f"bench-{number:05d}")]
                rows += sum(len(list(future.result())) for future in futures)
            if measured:
                print(f"{name:<24}{1000 * (time.process_time() - cpu) / args.requests:>16.3f}"
                      f"{1000 * (time.perf_counter() - wall) / args.requests:>17.2f}{rows / args.requests:>14.0f}")
    session.cluster.shutdown()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
