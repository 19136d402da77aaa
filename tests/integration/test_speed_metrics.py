"""A running counter serves Prometheus metrics on loopback and reports every batch."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from tests.integration.speed_support import isolated, kill_hard, start_viewcount, viewcount

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _scrape(port: int) -> str | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None


def test_counter_serves_metrics_while_running(stack, tmp_path):
    with isolated(stack, "test-metrics") as (settings, env):
        viewcount(env, "produce", "--events", "5000", "--seed", "3", "--day", "2026-11-22",
                  "--malformed", "0.02", "--oracle", str(tmp_path / "oracle"))
        port = _free_port()
        job = start_viewcount(env, "speed", "--metrics-port", str(port), "--checkpoint",
                              str(tmp_path / "checkpoint"), log=tmp_path / "speed.log")
        try:
            deadline, text = time.monotonic() + 180, None
            while time.monotonic() < deadline:
                text = _scrape(port)
                if text and 'viewcount_speed_rows_total{job="counter"} 5000.0' in text:
                    break
                time.sleep(1)
            assert text is not None, (tmp_path / "speed.log").read_text()[-2000:]
            assert 'viewcount_speed_rows_total{job="counter"} 5000.0' in text
            assert 'viewcount_speed_invalid_total{job="counter",reason="bad_json"}' in text
            assert 'viewcount_speed_lag_records{job="counter",partition="0"} 0.0' in text
            assert "viewcount_speed_batch_duration_seconds_bucket" in text
            assert "[counter] batch 0:" in (tmp_path / "speed.log").read_text()
        finally:
            kill_hard(job)
