"""Operational failures on the command line: one line that says what happened and what to
do, a non-zero exit, no traceback on the terminal (it is kept in the run folder's log, and
printed too with `viewcount --debug`).

Each failure is real: servers at addresses where nothing listens, a run folder without
generated credentials, credentials MinIO refuses, a filesystem that is full, a port that is
taken.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

NOTHING_LISTENS = {"VIEWCOUNT_KAFKA_BOOTSTRAP": "127.0.0.1:1", "VIEWCOUNT_CASSANDRA_HOSTS": "127.0.0.1",
                   "VIEWCOUNT_CASSANDRA_PORT": "1", "VIEWCOUNT_S3_ENDPOINT": "http://127.0.0.1:1"}
DAY = "2026-11-20"


def cli(*args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    base = {name: value for name, value in os.environ.items() if name not in drop}
    return subprocess.run([sys.executable, "-m", "viewcount.cli", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=300, stdin=subprocess.DEVNULL)


def error_line(result: subprocess.CompletedProcess, command: str) -> str:
    """The one line the command printed about its failure (Spark's own start-up warnings
    may come before it on stderr)."""
    assert result.returncode != 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    ours = [line for line in result.stderr.splitlines() if line.startswith(f"viewcount {command}: ")]
    assert len(ours) == 1, result.stderr[-3000:]
    assert ours[0].startswith(f"viewcount {command}: error: "), ours
    return ours[0]


@pytest.mark.parametrize(("args", "server"), [
    (["stack", "init"], "Kafka at 127.0.0.1:1"),
    (["produce", "--events", "10"], "Kafka is not reachable at 127.0.0.1:1"),
    (["speed", "--available-now", "--metrics-port", "0"], "Kafka at 127.0.0.1:1"),
    (["archive", "--available-now", "--metrics-port", "0"], "S3 at 127.0.0.1:1"),
    (["batch", "--date", DAY], "Cassandra"),
    (["reconcile", "--date", DAY], "Cassandra"),
    (["promote", "--date", DAY], "Cassandra"),
    (["catalog", "show", "video-1"], "Cassandra"),
    (["nightly", "--date", DAY], "Cassandra"),
])
def test_servers_not_running_is_one_line_naming_the_server_and_what_to_do(tmp_path, args, server):
    result = cli(*args, env={**NOTHING_LISTENS, "VIEWCOUNT_HOME": str(tmp_path)})
    line = error_line(result, args[0])
    assert server in line
    assert "viewcount stack up" in line


def test_missing_s3_credentials_is_one_line_saying_where_they_come_from(stack, tmp_path):
    # A run folder where `stack up` never generated credentials, no AWS variables.
    env = {"VIEWCOUNT_HOME": str(tmp_path)}
    for args in (["stack", "init"], ["archive", "--available-now", "--metrics-port", "0",
                                     "--checkpoint", str(tmp_path / "archiver")]):
        line = error_line(cli(*args, env=env, drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")), args[0])
        assert "no S3 credentials" in line and "AWS_ACCESS_KEY_ID" in line


def test_credentials_the_store_refuses_are_one_line_and_the_traceback_is_kept(stack, tmp_path):
    env = {"VIEWCOUNT_HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "not-a-key",
           "AWS_SECRET_ACCESS_KEY": "not-the-secret-either"}
    line = error_line(cli("stack", "init", env=env), "stack")
    assert "refused the credentials (InvalidAccessKeyId)" in line
    log = tmp_path / "logs" / "viewcount.log"
    assert str(log) in line
    kept = log.read_text()
    assert "viewcount stack init" in kept and "Traceback" in kept and "InvalidAccessKeyId" in kept

    debug = cli("--debug", "stack", "init", env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ClientError" in debug.stderr


@pytest.fixture()
def full_disk(tmp_path):
    """A 256 KiB filesystem, filled to the last byte."""
    mount = tmp_path / "full"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
        finally:
            os.close(filler)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line(stack, tmp_path, full_disk):
    oracle = full_disk / "oracle"
    result = cli("produce", "--events", "2000", "--topic", f"test-full-{uuid.uuid4().hex[:8]}",
                 "--oracle", str(oracle), env={"VIEWCOUNT_HOME": str(tmp_path)})
    line = error_line(result, "produce")
    assert "the disk is full" in line and "free some space" in line
    assert not oracle.exists(), "the oracle is written whole or not at all"


def test_a_port_that_is_taken_is_one_line(stack, tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        line = error_line(cli("serve", "--port", str(port), env={"VIEWCOUNT_HOME": str(tmp_path)}), "serve")
    assert f"cannot listen on 127.0.0.1:{port}" in line and "in use" in line


def test_only_operational_failures_are_explained(tmp_path):
    """Only operational failures are shortened: an unexpected error (explained as None) is
    a bug to report, and the CLI re-raises it with its traceback."""
    from storage.errors import explain
    from settings.environment import Settings

    assert explain(ZeroDivisionError("division by zero"), Settings.defaults()) is None
    assert explain(OSError(28, "No space left on device", str(Path("/x"))), Settings.defaults()).startswith(
        "the disk is full (/x)")


def test_a_keyspace_that_does_not_exist_is_named_not_taken_for_cassandra_being_down(stack, tmp_path):
    keyspace = f"missing_{uuid.uuid4().hex[:8]}"
    line = error_line(cli("catalog", "show", "video-1", env={"VIEWCOUNT_KEYSPACE": keyspace,
                                                             "VIEWCOUNT_HOME": str(tmp_path)}), "catalog")
    assert f"has no keyspace '{keyspace}' yet" in line and "not reachable" not in line, line


def test_a_counter_without_its_output_topics_is_one_line_naming_them(stack, tmp_path):
    """The brokers create no topic on first use: a counter started without its dead-letter
    or cell-feed topic is stopped before its JVM starts, not after a minute per batch."""
    cells, dead_letters = f"missing-{uuid.uuid4().hex[:8]}.cells", f"missing-{uuid.uuid4().hex[:8]}.dlq"
    result = cli("speed", "--available-now", "--metrics-port", "0",
                 env={"VIEWCOUNT_CELLS_TOPIC": cells, "VIEWCOUNT_DLQ_TOPIC": dead_letters, "VIEWCOUNT_HOME": str(tmp_path)})
    line = error_line(result, "speed")
    assert result.returncode == 2
    assert f"Kafka has no topic '{dead_letters}' and '{cells}': `viewcount stack up`" in line, line
    assert line.endswith("creates them"), line
