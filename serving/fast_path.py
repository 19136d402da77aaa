"""The two views routes answered in plain ASGI, before FastAPI's middleware and router.

A views request spent most of the API's CPU in FastAPI around the answer: route matching,
dependency injection, validating the three parameters and then the response with
pydantic, and encoding it, then the middleware's layers, each wrapping the request and
its sends (docs/benchmarks.md, "a lean hot path"). ``ServingApp`` (``serving.main``) hands
every request to ``ViewsFastPath.answered`` first, which answers
``GET /v1/videos/{video_id}/views`` and ``.../views/minutely`` itself and does for them
what the middleware does for every other request: the per-client rate limit
(``serving.rate_limit.refused``), the request metrics under the route's template
(``ApiMetrics.observe``, timed from before the rate limit as ``MetricsMiddleware`` times),
and the errors: a ``BadRequest`` is a 400, ``StoreUnavailable`` a 503 (``serving.errors``'
own responses), any other fault logged and a JSON 500, as the app's handler does. The
bodies are the ones ``serving.views`` builds for its routes. Anything else goes on to
FastAPI unchanged: other paths and methods, a missing ``start`` or ``end`` (FastAPI's
validation error is the message a client gets), an app mounted under a root path. The
routes stay declared in ``serving.views`` for the OpenAPI document.

The query string is decoded as Starlette decodes it (Latin-1 bytes, ``parse_qsl`` keeping
blank values, the last of a repeated name winning), so both paths read the same values
(``query_values``).
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qsl

from serving.errors import error_response, unavailable_response
from serving.ranges import BadRequest
from serving.rate_limit import TokenBuckets, refused
from serving.store import StoreUnavailable, ViewStore
from serving.views import minutely_views_body, range_views_body, router

log = logging.getLogger(__name__)
VIEWS_PATH = re.compile(r"/v1/videos/([^/]+)/(views|views/minutely)")
BODIES = {"views": range_views_body, "views/minutely": minutely_views_body}


def query_values(query_string: bytes) -> dict[str, str]:
    """The query's values by name, the last of a repeated name winning, as Starlette reads
    them; without an escape (no ``%``, no ``+``) split here, for a fraction of ``parse_qsl``'s cost."""
    text = query_string.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    values = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            values[name] = value
    return values


class ViewsFastPath:
    def __init__(self, store: ViewStore, routes: list, metrics, buckets: TokenBuckets | None) -> None:
        """``routes``: the app's (the views routes' templates label the metrics);
        ``metrics``: the app's ``ApiMetrics``; ``buckets``: the rate limit, None for none."""
        self.store = store
        self.metrics = metrics
        self.buckets = buckets
        templates = {f"{router.prefix}/{{video_id}}/{suffix}": suffix for suffix in BODIES}
        self.templates = {templates[route.path]: route.path for route in routes
                          if getattr(route, "path", None) in templates and "GET" in route.methods}
        if self.templates.keys() != BODIES.keys():
            raise RuntimeError(f"the app lacks a views route: has {sorted(self.templates)}")

    async def answered(self, scope, receive, send) -> bool:
        """Whether the request was a views request, now answered; if not, nothing was done."""
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return False
        match = VIEWS_PATH.fullmatch(scope["path"])
        if match is None:
            return False
        query = query_values(scope["query_string"])
        start, end = query.get("start"), query.get("end")
        if start is None or end is None:
            return False
        started = time.perf_counter()
        video_id, suffix = match.groups()
        status = await self._answer(BODIES[suffix], video_id, start, end, scope, receive, send)
        self.metrics.observe("GET", self.templates[suffix], status, time.perf_counter() - started)
        return True

    async def _answer(self, body_of, video_id: str, start: str, end: str, scope, receive, send) -> int:
        if self.buckets is not None:
            refusal = refused(self.buckets, self.metrics, scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return refusal.status_code
        try:
            body = await body_of(self.store, video_id, start, end)
        except BadRequest as error:
            response = error_response(400, str(error))
        except StoreUnavailable as error:
            response = unavailable_response(error)
        except Exception:  # noqa: BLE001 - a fault of ours: logged, and a JSON 500 as the app's handler answers
            log.exception("unhandled error on GET %s", scope["path"])
            response = error_response(500, "internal server error")
        else:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(len(body)).encode()),
                                    (b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return 200
        await response(scope, receive, send)
        return response.status_code
