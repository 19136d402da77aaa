"""`viewcount stack` arguments: --only goes with down, and names a server of the stack."""

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


def test_only_names_one_of_the_three_servers():
    result = _stack("down", "--only", "zookeeper")
    assert result.returncode == 2
    assert "invalid choice: 'zookeeper'" in result.stderr and "Traceback" not in result.stderr
