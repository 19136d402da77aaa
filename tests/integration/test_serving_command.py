"""`viewcount serve` starts uvicorn on the asked port, answers, and stops on SIGTERM;
a port it cannot use is a one-line error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.serve import VIEWCOUNT, wait_for_health

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("workers", [1, 2])
def test_viewcount_serve_answers_and_stops(stack, workers):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([VIEWCOUNT, "serve", "--port", str(port), "--workers", str(workers)],
                              env=dict(os.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_for_health(url, server)
        body = health.json()
        assert (health.status_code, body["status"], body["cassandra"]) == (200, "ok", "up")
        assert body["live"]["state"] in ("starting", "following")
        views = httpx.get(url + "/v1/videos/nobody/views",
                          params={"start": "2026-11-25T00:00:00Z", "end": "2026-11-25T01:00:00Z"})
        assert views.status_code == 200 and views.json()["views"] == 0
        assert httpx.get(url + "/docs").status_code == 200
        assert "/v1/top" in httpx.get(url + "/openapi.json").json()["paths"]
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises the signal it caught (exit by SIGTERM)
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr


def test_a_port_in_use_is_a_one_line_error(stack):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([VIEWCOUNT, "serve", "--port", str(port)], capture_output=True, text=True,
                                timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("arguments, message", [
    (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
])
def test_bad_arguments_are_user_errors(arguments, message):
    result = subprocess.run([VIEWCOUNT, "serve", *arguments], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"viewcount serve: error: {message}"


def test_bad_limits_are_user_errors():
    env = {**os.environ, "VIEWCOUNT_MAX_RANGE_DAYS": "a month"}
    result = subprocess.run([VIEWCOUNT, "serve", "--port", "0"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "viewcount serve: error: VIEWCOUNT_MAX_RANGE_DAYS must be a number, got 'a month'")
