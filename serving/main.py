"""The FastAPI app: routers, error handlers, metrics. The store is injected."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging

from fastapi import FastAPI

from serving import health, metrics, reconciliations, top, views
from serving.errors import install_error_handlers
from serving.fast_path import ViewsFastPath
from serving.limits import Limits
from serving.live import LiveCollector
from serving.metrics import ApiMetrics, MetricsMiddleware
from serving.rate_limit import RateLimitMiddleware, TokenBuckets
from serving.overrides import OverrideWatch
from serving.restatements import RestatementWatch
from serving.store import StoreUnavailable, ViewStore
from settings.environment import ServingKnobs, Settings, default_run_dir
from settings.logs import configure as configure_logging

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _following(app: FastAPI):
    """The worker follows the cell feed while it serves (``serving.live``)."""
    live = app.state.store.live
    live.start(asyncio.get_running_loop())
    try:
        yield
    finally:
        await asyncio.to_thread(live.stop)


class ServingApp(FastAPI):
    """The API: a views request is answered by ``views_fast_path`` before the middleware
    and the router (``serving.fast_path``); None sends every request through them."""

    views_fast_path: ViewsFastPath | None = None

    async def __call__(self, scope, receive, send) -> None:
        fast_path = self.views_fast_path
        if fast_path is None or not await fast_path.answered(scope, receive, send):
            await super().__call__(scope, receive, send)


def create_app(store: ViewStore) -> ServingApp:
    app = ServingApp(
        lifespan=_following,
        title="viewcount",
        description="Billing-grade video view counts: final days from the promoted batch, "
        "provisional days from the speed layer. Times RFC 3339 UTC; ranges [start, end).",
        version="1",
    )
    app.state.store = store
    app.state.metrics = ApiMetrics()
    app.state.metrics.watch_caches({"final": store.cache, "provisional": store.speed_cache,
                                    "live": store.live, "answers": store.answers})
    app.state.metrics.registry.register(LiveCollector(store.live))
    app.state.metrics.watch_nightly(store)
    app.state.restatements = RestatementWatch(store)
    app.state.metrics.watch_restatements(app.state.restatements)
    app.state.overrides = OverrideWatch(store)
    app.state.metrics.watch_overrides(app.state.overrides)
    for module in (views, top, reconciliations, health, metrics):
        app.include_router(module.router)
    install_error_handlers(app)
    limits = store.limits
    buckets = TokenBuckets(limits.rate_limit_rps, limits.rate_limit_burst) if limits.rate_limit_rps > 0 else None
    if buckets is not None:  # inside the metrics middleware, so a 429 is counted and timed too
        app.add_middleware(RateLimitMiddleware, metrics=app.state.metrics, buckets=buckets)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    # The same buckets: a client has one budget whichever path answers it.
    app.views_fast_path = ViewsFastPath(store, app.routes, app.state.metrics, buckets)
    app.openapi = functools.partial(_schema_without_422, app, app.openapi)
    return app


def _schema_without_422(app: FastAPI, build_schema) -> dict:
    """FastAPI documents a 422 on every route with parameters; this API answers bad input
    with a 400 ``{"error"}`` (``serving.errors``) and never a 422, so the schema must not say 422."""
    if app.openapi_schema is None:
        schema = build_schema()
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
    return app.openapi_schema


def app_from_env() -> FastAPI:
    """The app of one ``viewcount serve`` worker process: its own store, from the environment."""
    configure_logging(default_run_dir())  # a worker process started by uvicorn logs as the command does
    store = ViewStore(Settings.from_env(), Limits.from_knobs(ServingKnobs.from_env()))
    try:
        store.connect()  # connect and prepare before the first request
    except StoreUnavailable as error:
        log.warning(f"viewcount serve: warning: {error}; /healthz answers 503 until it is up")
    app = create_app(store)
    # What start-up made (imports, the app, the driver's session) lives as long as the
    # process: moved out of the collector's generations, so a full collection walks only
    # what requests made since, not the whole heap (a pause in the answers' tail).
    gc.collect()
    gc.freeze()
    return app
