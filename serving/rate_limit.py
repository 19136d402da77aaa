"""A token bucket per client at the edge of the API.

A client is its address: the project issues no API keys, so a key a request carries
proves nothing (rotating keys would escape the limit, and sending another's key would
spend its budget) and is ignored. Behind a proxy the address must be the client's, not
the proxy's: ``viewcount serve --forwarded-allow-ips`` (``serving.command``). Each bucket
holds up to ``burst`` tokens and refills at ``rate`` tokens a second; a request takes one
token or is answered 429 with ``Retry-After`` (whole seconds until a token is back) and a
JSON error, before any routing or Cassandra read. ``/healthz`` and ``/metrics`` are never
limited (probes and scrapers must keep working under load). Limited requests are counted
in ``/metrics`` (``viewcount_http_rate_limited``).

The buckets live in the worker's memory: with ``viewcount serve --workers N`` each worker
has its own, so a client may get up to N times the budget when the kernel spreads its
connections over the workers. The buckets are bounded (least recently seen clients are
forgotten first, and a forgotten client starts with a full bucket).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from cachetools import LRUCache
from fastapi.responses import JSONResponse

EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})
MAX_CLIENTS = 100_000  # buckets kept; a client's bucket is a few dozen bytes


class TokenBuckets:
    """``rate`` tokens a second up to ``burst`` per client; thread-safe."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(max_clients)  # client: (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the client may go on (a token taken), else the seconds until it may."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


def client_of(scope: dict) -> str:
    """The client a request is counted against: its address, whatever headers it sends."""
    client = scope.get("client")
    return "address:" + (client[0] if client else "unknown")


class RateLimitMiddleware:
    """Pure ASGI: answers 429 before the request reaches a route."""

    def __init__(self, app, buckets: TokenBuckets, metrics) -> None:
        self.app = app
        self.buckets = buckets
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        refusal = refused(self.buckets, self.metrics, scope)
        await (self.app if refusal is None else refusal)(scope, receive, send)


def refused(buckets: TokenBuckets, metrics, scope: dict) -> JSONResponse | None:
    """None when the request's client may go on (a token taken), else its 429 (counted)."""
    wait = buckets.take(client_of(scope))
    if not wait:
        return None
    metrics.rate_limited.inc()
    retry_after = max(1, math.ceil(wait))
    return JSONResponse(
        {"error": f"rate limit exceeded: {buckets.rate:g} requests a second per client "
                  f"(bursts of {buckets.burst:,}); retry after {retry_after} s"},
        status_code=429, headers={"Retry-After": str(retry_after)})
