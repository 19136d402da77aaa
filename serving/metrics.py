"""Prometheus metrics of the API: requests by route and status, latency histograms, the
partition caches (promoted and provisional), the outcome of the nightly runs (the newest promoted and
reconciled days, read from Cassandra at most once a minute), the restatement requests
and records (``serving.restatements``) and the promotion overrides of recent days
(``serving.overrides``), both at most every few seconds, for the alerts in
``infra/prometheus``. Each app has its own registry, served on ``/metrics``.

Routes are labelled by their template (``/v1/videos/{video_id}/views``), never by the
raw path, so a client cannot grow the label set; paths that match no route share one.
"""

from __future__ import annotations

import datetime as dt
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from serving.overrides import DAYS as OVERRIDE_DAYS
from serving.store import StoreUnavailable

UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
                   0.5, 1.0, 2.5, 5.0)

router = APIRouter(tags=["operations"])


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "viewcount_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "viewcount_http_request_duration_seconds", "time to answer a request",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.rate_limited = Counter(
            "viewcount_http_rate_limited", "requests answered 429 by the per-client rate limit",
            registry=self.registry,
        )
        # (method, route, status) -> the request counter's and the latency histogram's children;
        # as bounded as the label sets (routes are templates, methods those the parser knows)
        self._children: dict[tuple[str, str, int], tuple] = {}

    def watch_caches(self, caches: dict) -> None:
        """``caches``: name (the ``cache`` label) -> ``serving.cache.LruCache``."""
        self.registry.register(_CacheCollector(caches))

    def watch_nightly(self, store) -> None:
        self.registry.register(_NightlyCollector(store))

    def watch_restatements(self, watch) -> None:
        """``watch``: a ``serving.restatements.RestatementWatch``."""
        self.registry.register(_RestatementCollector(watch))

    def watch_overrides(self, watch) -> None:
        """``watch``: a ``serving.overrides.OverrideWatch``."""
        self.registry.register(_OverrideCollector(watch))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:  # once per label set: labels() validates and locks on every call
            children = self._children[method, route, status] = (
                self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)


class _CacheCollector:
    def __init__(self, caches: dict) -> None:
        self.caches = caches

    def collect(self):
        lookups = CounterMetricFamily(
            "viewcount_serving_cache_lookups",
            "cache lookups: partitions, or the views routes' answers (answers); a stale entry is a miss",
            labels=["cache", "result"])
        entries = GaugeMetricFamily("viewcount_serving_cache_entries", "partitions (or answers) cached",
                                    labels=["cache"])
        for name, cache in self.caches.items():
            lookups.add_metric([name, "hit"], cache.hits)
            lookups.add_metric([name, "miss"], cache.misses)
            entries.add_metric([name], len(cache))
        yield lookups
        yield entries


def _midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()


class _NightlyCollector:
    """The nightly run's outcome as the store last read it (``ViewStore.refresh_nightly``):
    alerts compare the newest promoted day with the clock and read the newest gate."""

    def __init__(self, store) -> None:
        self.store = store

    def collect(self):
        status = self.store.nightly
        if status is None:
            return
        if status.promoted_day is not None:
            yield GaugeMetricFamily("viewcount_nightly_promoted_day_timestamp_seconds",
                                    "the newest promoted (final) day, as its 00:00 UTC", _midnight(status.promoted_day))
        if status.reconciled_day is not None:
            yield GaugeMetricFamily("viewcount_nightly_reconciled_day_timestamp_seconds",
                                    "the newest reconciled day, as its 00:00 UTC", _midnight(status.reconciled_day))
            yield GaugeMetricFamily("viewcount_nightly_reconciliation_passed",
                                    "1 when the newest reconciled day's billing gate passed, else 0",
                                    1.0 if status.reconciliation_passed else 0.0)


class _RestatementCollector:
    """The restatement counts as last read (``RestatementWatch.refresh``), and whether that
    read succeeded: while Cassandra does not answer, the last counts stay and read_ok is 0."""

    def __init__(self, watch) -> None:
        self.watch = watch

    def collect(self):
        watch = self.watch
        if watch.read_ok is not None:
            yield GaugeMetricFamily("viewcount_restatement_read_ok",
                                    "1 when the latest read of the restatement requests and records succeeded, else 0",
                                    1.0 if watch.read_ok else 0.0)
        if watch.read_at is not None:
            yield GaugeMetricFamily("viewcount_restatement_read_timestamp_seconds",
                                    "when the restatement counts shown were read", watch.read_at)
        counts = watch.counts
        if counts is None:
            return
        requests = GaugeMetricFamily(
            "viewcount_restatement_requests",
            "the views topic's restatement requests (closed days found stale) in this status, all days",
            labels=["status"])
        for status in ("pending", "failed"):
            requests.add_metric([status], counts.requests.get(status, 0))
        yield requests
        yield GaugeMetricFamily(
            "viewcount_restatements_recorded",
            "restatement records (promotions that replaced a promoted version) of the days the views topic "
            "has a restatement request for, whatever its status", counts.records)


class _OverrideCollector:
    """The promotion overrides of recent days per kind as last read (``OverrideWatch.refresh``),
    and whether that read succeeded: while Cassandra does not answer, the last counts stay."""

    def __init__(self, watch) -> None:
        self.watch = watch

    def collect(self):
        watch = self.watch
        if watch.read_ok is not None:
            yield GaugeMetricFamily("viewcount_promotion_override_read_ok",
                                    "1 when the latest read of the promotion overrides succeeded, else 0",
                                    1.0 if watch.read_ok else 0.0)
        if watch.counts is None:
            return
        overrides = GaugeMetricFamily(
            "viewcount_promotion_overrides",
            f"promotions of the last {OVERRIDE_DAYS} days and today that the exact billing gate did not clear, by kind "
            "(unreconciled: no passing reconciliation; loosened: passed with billable tolerances looser than exact)",
            labels=["kind"])
        for kind, count in watch.counts.items():
            overrides.add_metric([kind], count)
        yield overrides


class MetricsMiddleware:
    """Pure ASGI (no per-request task as BaseHTTPMiddleware makes): times every request."""

    def __init__(self, app, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)


@router.get("/metrics", include_in_schema=False)
async def prometheus_text(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    try:
        await request.app.state.store.refresh_nightly()
    except StoreUnavailable:
        pass  # /metrics answers without Cassandra; the last values read stay
    await request.app.state.restatements.refresh()  # never raises: a failed read shows as read_ok 0
    await request.app.state.overrides.refresh()  # never raises either
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
