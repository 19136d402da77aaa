"""How big the fault tests run: CI sizes by default, full sizes under `make soak`.

The defaults prove every claim of the fault tests in a fraction of the time: what a crash
or an outage test proves depends on where the faults land (mid-batch, between batches,
while events arrive), not on how many events flow. `make soak` (`python -m
tests.faults.scale [pytest arguments]`) runs the same tests with the sizes below set to
their full-scale values, except those already set in the environment; any of them can
also be set by hand:

    VIEWCOUNT_CRASH_EVENTS=1000000 VIEWCOUNT_CRASH_RATE=2500 VIEWCOUNT_CRASH_KILLS=10 \\
        make test PYTEST_ARGS="tests/faults/test_crashes.py -s"

| variable | default (CI) | `make soak` | what it sizes |
|---|---|---|---|
| VIEWCOUNT_CRASH_EVENTS | 10,000 | 1,000,000 | events produced at least (more if the kills take longer) |
| VIEWCOUNT_CRASH_RATE | 200 | 2,500 | their rate per second |
| VIEWCOUNT_CRASH_KILLS | 3 | 10 | kill -9 of the counter, and of the archiver |
| VIEWCOUNT_POISON_RECORDS | 3,000 | 100,000 | hostile records (every kind of hostile.py occurs) |
| VIEWCOUNT_OUTAGE_EVENTS | 30,000 | 90,000 | events produced around each outage, at 1,000/s |
| VIEWCOUNT_OUTAGE_SECONDS | 15 | 30 | how long Kafka and MinIO are down (Cassandra twice as long) |
| VIEWCOUNT_ORCHESTRATION_RERUN_DAYS | 0 | 2 | days of the backfill run a second time (0: no second pass) |
"""

from __future__ import annotations

import os
import sys


def _size(name: str, default: int, minimum: int = 1) -> int:
    value = int(os.environ.get(name, default))
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


CRASH_EVENTS = _size("VIEWCOUNT_CRASH_EVENTS", 10_000)
CRASH_RATE = _size("VIEWCOUNT_CRASH_RATE", 200)
# Kills alternate between mid-batch and between batches, so two are the fewest that land
# on both; three give the harder aim (mid-batch) two tries, and a restart after a restart.
CRASH_KILLS = _size("VIEWCOUNT_CRASH_KILLS", 3, minimum=2)
POISON_RECORDS = _size("VIEWCOUNT_POISON_RECORDS", 3_000, minimum=100)
OUTAGE_EVENTS = _size("VIEWCOUNT_OUTAGE_EVENTS", 30_000, minimum=10_000)
# Long enough for every job to meet the outage: the counter writes every second, the
# archiver every two, the producer sends throughout, and the API is asked every 2 s.
OUTAGE_SECONDS = _size("VIEWCOUNT_OUTAGE_SECONDS", 15, minimum=10)
# The rerun always includes the day whose batch was killed; 2 reruns the whole backfill. In
# CI there is no second pass: that a rerun rewrites version 1 with the same rows and keeps
# the promotion is proven by tests/integration/test_batch_layer.py (the CLI) and
# test_nightly_dag.py (the DAG); `make soak` adds the report and top-video checks.
ORCHESTRATION_RERUN_DAYS = _size("VIEWCOUNT_ORCHESTRATION_RERUN_DAYS", 0, minimum=0)

SOAK = {
    "VIEWCOUNT_CRASH_EVENTS": 1_000_000,
    "VIEWCOUNT_CRASH_RATE": 2_500,
    "VIEWCOUNT_CRASH_KILLS": 10,
    "VIEWCOUNT_POISON_RECORDS": 100_000,
    "VIEWCOUNT_OUTAGE_EVENTS": 90_000,
    "VIEWCOUNT_OUTAGE_SECONDS": 30,
    "VIEWCOUNT_ORCHESTRATION_RERUN_DAYS": 2,
}


def main(pytest_args: list[str]) -> None:
    """pytest with the soak sizes; a size already in the environment wins."""
    env = {**{name: str(value) for name, value in SOAK.items()}, **os.environ}
    print("soak sizes: " + ", ".join(f"{name}={env[name]}" for name in SOAK), flush=True)
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *pytest_args], env)


if __name__ == "__main__":
    main(sys.argv[1:])
