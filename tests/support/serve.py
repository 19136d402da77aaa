"""``viewcount serve`` as a process of its own: started on a free port, waited on until it
answers, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port

VIEWCOUNT = str(Path(sys.executable).parent / "viewcount")


def wait_for_health(url: str, server: subprocess.Popen, seconds: float = 60) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1]
        try:
            return httpx.get(url + "/healthz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("viewcount serve did not answer")


@contextmanager
def serve_running(log: Path, env: dict[str, str] | None = None):
    """``viewcount serve`` on a free port, its output in ``log``, until the block ends
    (then SIGTERM). Yields (base URL, process, first /healthz answer)."""
    port = free_port()
    with log.open("ab") as sink:
        server = subprocess.Popen([VIEWCOUNT, "serve", "--port", str(port)], env=env or dict(os.environ),
                                  stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, server, wait_for_health(url, server)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
