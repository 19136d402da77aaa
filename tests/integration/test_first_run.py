"""A newcomer's first run: a run folder that never held a stack.

`viewcount stack up` then generates the local MinIO's credentials and formats Kafka's
storage. Every command must work on that first try, including one that read its settings
before `stack up` made them (`viewcount demo` did, and died with NoCredentialsError).

`viewcount demo` runs every step a newcomer runs by hand (stack up, produce, the counter
and the archiver, the batch, reconcile), each reading its settings as a separate command
would, and the reconcile compares the speed counts with the batch's and Kafka's: one run
in a fresh folder covers them all.

Each test brings up a stack of its own from an empty VIEWCOUNT_HOME on another loopback
address and other ports (MinIO listens on 127.0.0.1 and ::1 too, whatever address it is
given), beside the session's stack, with no AWS variables set, and stops it at the end. The downloaded artifacts are shared (their cache is
outside the run folder), as on a machine where `make` has fetched them.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest


pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

INHERITED_OUT = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "VIEWCOUNT_KEYSPACE", "VIEWCOUNT_S3_BUCKET",
                 "VIEWCOUNT_VIEWS_TOPIC", "VIEWCOUNT_DLQ_TOPIC", "VIEWCOUNT_CELLS_TOPIC", "VIEWCOUNT_AIRFLOW_HOME")


def newcomer_environment(home: Path, address: str, ports: int) -> dict[str, str]:
    """Kafka on <ports>092, Cassandra on <ports>042, MinIO on <ports>000 (and the next port
    of each), at `address`."""
    env = {name: value for name, value in os.environ.items() if name not in INHERITED_OUT}
    return {**env, "VIEWCOUNT_HOME": str(home), "VIEWCOUNT_KAFKA_BOOTSTRAP": f"{address}:{ports}092",
            "VIEWCOUNT_CASSANDRA_HOSTS": address, "VIEWCOUNT_CASSANDRA_PORT": f"{ports}042",
            "VIEWCOUNT_S3_ENDPOINT": f"http://{address}:{ports}000"}


def cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewcount.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@contextmanager
def stack_stopped_after(env: dict[str, str]):
    try:
        yield
    finally:
        cli(env, "stack", "down", timeout=300)


def _assert_clean(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]


def test_demo_in_a_run_folder_that_never_held_a_stack(stack, tmp_path):
    home = tmp_path / "never-held-a-stack"
    env = newcomer_environment(home, "127.0.0.3", ports=29)
    day = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)).date()
    with stack_stopped_after(env):
        demo = cli(env, "demo", "--events", "2000", "--day", day.isoformat(), timeout=1500)
        _assert_clean(demo)
    assert "[8/8] the report and the Data Docs" in demo.stderr
    assert "status pass" in demo.stderr
    assert "demo finished in" in demo.stderr
    assert (home / "credentials.env").is_file()
    assert (home / "demo" / "report" / "report.html").is_file()
