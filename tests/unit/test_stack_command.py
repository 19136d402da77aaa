"""`viewcount stack` arguments: --only goes with down and names a server of the stack;
--nodes goes with up and is a small number."""

from __future__ import annotations

import subprocess
import sys


def _stack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewcount.cli", "stack", *args],
                          capture_output=True, text=True, timeout=60)


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
