"""A running counter serves Prometheus metrics on loopback and reports every batch."""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.support.ports import free_port
from tests.support.speed import isolated, kill_hard, start_viewcount, viewcount

pytestmark = pytest.mark.integration


def _scrape(port: int) -> str | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None


def _value(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_counter_serves_metrics_while_running(stack, tmp_path):
    with isolated(stack, "test-metrics") as (settings, env):
        viewcount(env, "produce", "--events", "5000", "--seed", "3", "--day", "2026-11-22",
                  "--malformed", "0.02", "--oracle", str(tmp_path / "oracle"))
        port = free_port()
        # Small batches far apart, so the lag is seen while the backlog is worked off.
        job = start_viewcount(env, "speed", "--metrics-port", str(port), "--checkpoint",
                              str(tmp_path / "checkpoint"), "--max-offsets-per-trigger", "1500",
                              "--trigger-seconds", "4", log=tmp_path / "speed.log")
        try:
            deadline, text, samples = time.monotonic() + 240, None, []
            while time.monotonic() < deadline:
                text = _scrape(port)
                if text:
                    samples.append((_value(text, 'viewcount_speed_rows_total{job="counter"}'),
                                    _value(text, 'viewcount_speed_lag_records{job="counter"')))
                if samples and samples[-1] == (5000, 0):
                    break
                time.sleep(0.5)
            assert text is not None, (tmp_path / "speed.log").read_text()[-2000:]
            assert 'viewcount_speed_rows_total{job="counter"} 5000.0' in text
            assert 'viewcount_speed_invalid_total{job="counter",reason="bad_json"}' in text
            assert 'viewcount_speed_lag_records{job="counter",partition="0"} 0.0' in text
            # Lag is what Kafka holds beyond the last finished batch, also between batches.
            assert any(0 < rows < 5000 and lag == 5000 - rows for rows, lag in samples), samples
            assert "viewcount_speed_batch_duration_seconds_bucket" in text
            assert "[counter] batch 0:" in (tmp_path / "speed.log").read_text()
        finally:
            kill_hard(job)
