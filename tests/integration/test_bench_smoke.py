"""Every script in bench/ at a tiny size against the real stack: it still runs, through the
commands' own entry points, and still agrees with its reference.

Each bench checks its own result against its reference (DuckDB, the oracle, Cassandra read
directly, the rows it wrote, a replay in plain Python, the batch and reconcile benches also
the plainest Spark job for the same work ...), prints whether they agree, and
exits 1 when they do not; here each runs as a new user would run it (a subprocess of the
project's Python), and the test asserts the exit status and the agreement line. The sizes
are a smoke run's, not a measurement's: docs/benchmarks.md gives the full-size commands.
bench/bare_server.py and bench/serving_load.py are serving_latency.py's helpers, run
through it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
HELPERS = {"bare_server.py", "serving_load.py"}  # run through serving_latency.py

# script: (tiny-size arguments, what its output says when it agrees with its reference)
SMOKE = {
    "batch_throughput.py": (["--events", "20000"], "(same as DuckDB and the Spark floor)"),
    "reconcile_compare.py": (["--cells", "20000"], "results identical (ours, the Spark floor, DuckDB)"),
    "parse_events.py": (["--events", "2000", "--repeat", "1"], ": agree"),
    "produce_throughput.py": (["--events", "2000"], ": agree"),
    "minute_writes.py": (["--cells", "2000", "--videos", "200"], "every write read back"),
    "serving_memory.py": (["--partitions", "200", "--minutes", "20", "--cells", "2000"], ": agree"),
    "spark_startup.py": (["--rounds", "1"], ": agree"),
    "speed_throughput.py": (["--quick", "--backlog", "2000"], ": agree"),
}
SERVING = {"serving_latency.py", "serving_read_cost.py"}  # one test: the second reads what the first seeds
SERVING_VIDEOS, SERVING_MINUTES = "20", "10"


def run_bench(script: str, *args: str, env: dict | None = None, timeout: float = 300) -> str:
    result = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (f"{script} exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
                                    f"\n--- stderr\n{result.stderr[-3000:]}")
    return result.stdout


def test_every_bench_script_has_a_smoke_run():
    scripts = {path.name for path in BENCH.glob("*.py")}
    assert scripts == set(SMOKE) | SERVING | HELPERS


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_a_bench_at_a_tiny_size_agrees_with_its_reference(stack, script):
    arguments, agreement = SMOKE[script]
    output = run_bench(script, *arguments)
    assert agreement in output, output


def test_the_serving_benches_at_a_tiny_size_agree_with_cassandra(stack):
    """serving_latency.py (its API, the bare route of bare_server.py, the raw reads; the
    API's answers against Cassandra read directly), then serving_read_cost.py on the
    keyspace it seeded; both in a keyspace and cell feed of their own, dropped after."""
    from storage.cassandra import drop_keyspace
    from storage.topics import delete_topics

    keyspace = f"bench_smoke_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "VIEWCOUNT_BENCH_KEYSPACE": keyspace}
    try:
        output = run_bench("serving_latency.py", "--videos", SERVING_VIDEOS, "--minutes", SERVING_MINUTES,
                           "--phases", "50:2", "--warmup", "1", "--warmup-rate", "50", "--writes-per-second", "10",
                           "--port", str(free_port()), env=env)
        assert "Cassandra read directly: agree" in output, output
        assert "50/s: every answer a 200: met" in output, output
        output = run_bench("serving_read_cost.py", "--requests", SERVING_VIDEOS, "--videos", SERVING_VIDEOS,
                           "--minutes", SERVING_MINUTES, env=env)
        assert "agree with the seeded rows" in output, output
    finally:
        drop_keyspace(stack.replaced(keyspace=keyspace))
        delete_topics(stack, [f"{keyspace}.cells"])
