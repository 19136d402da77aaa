"""The two views routes answered in plain ASGI, before FastAPI's router.

A views request spent most of the API's CPU in FastAPI around the answer: route matching,
dependency injection, validating the three parameters and then the response with
pydantic, and encoding it (docs/benchmarks.md, "a lean hot path"). This middleware
answers ``GET /v1/videos/{video_id}/views`` and ``.../views/minutely`` itself, with the
bodies ``serving.views`` builds for its routes too, and the errors those routes answer:
a ``BadRequest`` is a 400 and ``StoreUnavailable`` a 503, through ``serving.errors``' own
responses. Anything else goes on to FastAPI unchanged: other paths and methods, a
missing ``start`` or ``end`` (FastAPI's validation error is the message a client gets),
an app mounted under a root path. The routes stay declared in ``serving.views`` for the
OpenAPI document, and a request this path answers carries its route in the scope, as the
router would set it, for the metrics' route label.

The query string is decoded as Starlette decodes it (Latin-1 bytes, ``parse_qsl`` keeping
blank values, the last of a repeated name winning), so both paths read the same values
(``query_values``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from serving.errors import error_response, unavailable_response
from serving.ranges import BadRequest
from serving.store import StoreUnavailable, ViewStore
from serving.views import minutely_views_body, range_views_body, router

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
    """Pure ASGI, innermost of the app's middleware: the rate limit and the metrics see
    its requests as they see the router's."""

    def __init__(self, app, store: ViewStore, routes: list) -> None:
        self.app = app
        self.store = store
        templates = {f"{router.prefix}/{{video_id}}/{suffix}": suffix for suffix in BODIES}
        self.routes = {templates[route.path]: route for route in routes
                       if getattr(route, "path", None) in templates and "GET" in route.methods}
        if self.routes.keys() != BODIES.keys():
            raise RuntimeError(f"the app lacks a views route: has {sorted(self.routes)}")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            match = VIEWS_PATH.fullmatch(scope["path"])
            if match is not None:
                query = query_values(scope["query_string"])
                start, end = query.get("start"), query.get("end")
                if start is not None and end is not None:
                    video_id, suffix = match.groups()
                    scope["route"] = self.routes[suffix]
                    await self._answer(BODIES[suffix], video_id, start, end, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, body_of, video_id: str, start: str, end: str, scope, receive, send) -> None:
        try:
            body = await body_of(self.store, video_id, start, end)
        except BadRequest as error:
            await error_response(400, str(error))(scope, receive, send)
            return
        except StoreUnavailable as error:
            await unavailable_response(error)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
