"""`viewcount stack` arguments: --only goes with down and names a server of the stack;
--nodes goes with up and is a small number, and never another count than the run folder's
data was written by."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def _stack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewcount.cli", "stack", *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_only_with_another_action_than_down_is_a_one_line_error():
    result = _stack("status", "--only", "kafka")
    assert result.returncode == 2
    assert result.stderr.strip() == "viewcount stack: error: --only goes with down, not status"


def test_only_names_a_server_of_the_stack():
    result = _stack("down", "--only", "zookeeper")
    assert result.returncode == 2
    assert result.stderr.strip() == ("viewcount stack: error: --only: no server 'zookeeper' in this stack "
                                     "(one of kafka, cassandra, minio, spark-master, spark-worker)")


def test_nodes_goes_with_up_only():
    result = _stack("status", "--nodes", "3")
    assert result.returncode == 2
    assert result.stderr.strip() == "viewcount stack: error: --nodes goes with up, not status"


def test_nodes_must_be_a_small_number():
    for bad in ("0", "10", "three"):
        result = _stack("up", "--nodes", bad)
        assert result.returncode == 2
        assert "argument --nodes: a number of nodes from 1 to 9" in result.stderr and "Traceback" not in result.stderr


def test_up_with_another_node_count_than_the_data_is_refused_before_anything_starts(tmp_path):
    run_dir = tmp_path / "run"
    for written in ("kafka/data", "cassandra/data/commitlog", "minio/data", "checkpoints/counter"):
        (run_dir / written).mkdir(parents=True)
        (run_dir / written / "written").write_text("by a 1-node stack\n")
    # Should the refusal not come first, the first Kafka node finds its port taken and
    # nothing starts either (on addresses and a port of this test's own).
    with socket.socket() as taken:
        taken.bind(("127.0.4.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "VIEWCOUNT_HOME": str(run_dir), "VIEWCOUNT_KAFKA_BOOTSTRAP": f"127.0.4.1:{port}",
               "VIEWCOUNT_CASSANDRA_HOSTS": "127.0.4.1", "VIEWCOUNT_S3_ENDPOINT": "http://127.0.4.1:9000"}
        result = subprocess.run([str(Path(sys.executable).parent / "viewcount"), "stack", "up", "--nodes", "3"],
                                capture_output=True, text=True, timeout=120, env=env)

    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"viewcount stack: error: {run_dir} holds data written by a 1-node stack "
                                    "(kafka/data, cassandra/data)")
    assert "`viewcount stack up --nodes 1`" in result.stderr and "`viewcount stack down`, then remove" in result.stderr
    # Nothing started or written but the refusal, kept in the run folder's log.
    assert sorted(path.name for path in run_dir.iterdir()) == ["cassandra", "checkpoints", "kafka", "logs", "minio"]
    assert [path.name for path in (run_dir / "logs").iterdir()] == ["viewcount.log"]
    assert result.stderr.strip() in (run_dir / "logs" / "viewcount.log").read_text()
