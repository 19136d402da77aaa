"""The views routes answered by ``serving.fast_path`` say byte for byte what FastAPI's
routes say for the same request: status, body and headers, answers and errors alike."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from serving.fast_path import ViewsFastPath
from serving.limits import Limits
from serving.main import create_app
from serving.models import MinutelyViews, RangeViews
from serving.store import ViewStore
from tests.support.ports import free_port
from tests.support.serving import (
    batch_of,
    generated_counts,
    new_video,
    promote,
    running,
    write_batch,
    write_speed,
)

pytestmark = pytest.mark.integration

DAYS = [dt.date(2035, 7, 1), dt.date(2035, 7, 2), dt.date(2035, 7, 3)]  # the first promoted
HEADERS = ("content-type", "content-length", "retry-after")


def without_fast_path(app):
    """The same app answering every request through its middleware and FastAPI's router."""
    assert isinstance(app.views_fast_path, ViewsFastPath)
    app.views_fast_path = None
    return app


@pytest.fixture(scope="module")
def video(cassandra_session):
    video_id = new_video()
    for number, day in enumerate(DAYS):
        write_speed(cassandra_session, video_id, generated_counts(seed=40 + number, day=day))
    write_batch(cassandra_session, video_id, 1, batch_of(generated_counts(seed=40, day=DAYS[0]), seed=50))
    promote(cassandra_session, DAYS[0], 1)
    return video_id


def answers(settings, urls: list[str]) -> tuple[list, list]:
    """Each URL's (status, body, headers) from the app with its fast path and from the app
    without, each with a store of its own."""
    both = []
    for build in (create_app, lambda store: without_fast_path(create_app(store))):
        store = ViewStore(settings, Limits())
        try:
            with running(build(store)) as base, httpx.Client(base_url=base, timeout=30) as client:
                both.append([_answer(client.get(url)) for url in urls])
        finally:
            store.close()
    return both[0], both[1]


def _answer(response: httpx.Response) -> tuple:
    return response.status_code, response.content, {name: response.headers.get(name) for name in HEADERS}


def test_answers_are_the_routes_answers(stack, video):
    whole = "start=2035-07-01T00:00:00Z&end=2035-07-04T00:00:00Z"
    urls = [
        f"/v1/videos/{video}/{path}?{query}"
        for path in ("views", "views/minutely")
        for query in (
            whole,
            "start=2035-07-01T18:00:00Z&end=2035-07-03T06:30:00Z",
            "start=2035-07-02T11:00:30%2B01:00&end=2035-07-02T13:00:00.5+02:00",  # escaped and bare '+'
            "end=2035-07-01T00:00:00Z&start=2035-06-30T00:00:00Z&start=2035-07-01T12:00:00Z&end=2035-07-02T00:00:00Z",
            f"{whole}&start=2035-07-02T00:00:00Z&unknown=1&&flag",
        )
    ]
    urls.append(f"/v1/videos/{new_video()}/views?{whole}")
    fast, routed = answers(stack, urls)
    assert fast == routed
    assert all(status == 200 for status, _, _ in fast)
    for url, (_, body, _) in zip(urls, fast):  # the declared models, field for field and in their order
        model = MinutelyViews if "/minutely" in url else RangeViews
        assert list(json.loads(body)) == list(model.model_fields)
        assert model.model_validate_json(body).model_dump() == json.loads(body)


@pytest.mark.parametrize("path", ["views", "views/minutely"])
def test_errors_are_the_routes_errors(stack, path):
    day = "start=2035-07-01T00:00:00Z&end=2035-07-02T00:00:00Z"
    urls = [
        f"/v1/videos/bad.id/{path}?{day}",
        f"/v1/videos/v%20v/{path}?{day}",
        f"/v1/videos/{'x' * 65}/{path}?{day}",
        f"/v1/videos/v/{path}?start=&end=2035-07-02T00:00:00Z",
        f"/v1/videos/v/{path}?start=yesterday&end=2035-07-02T00:00:00Z",
        f"/v1/videos/v/{path}?start=2035-07-02T00:00:00Z&end=2035-07-01T00:00:00Z",
        f"/v1/videos/v/{path}?start=2035-07-01T00:00:10Z&end=2035-07-01T00:00:50Z",
        f"/v1/videos/v/{path}?start=2035-01-01T00:00:00Z&end=2035-03-01T00:00:00Z",
        f"/v1/videos/v/{path}?start={'9' * 5_000}&end=2035-07-02T00:00:00Z",
        f"/v1/videos/v/{path}?start=%E2%82%AC&end=2035-07-02T00:00:00Z",
        f"/v1/videos/v/{path}?start=2035-07-01T00:00:00Z",  # not the fast path's: FastAPI's message
        f"/v1/videos/v/{path}/?{day}",
    ]
    fast, routed = answers(stack, urls)
    assert fast == routed
    assert [status for status, _, _ in fast] == [400] * 11 + [307]


def test_cassandra_unavailable_is_the_routes_503(stack):
    unreachable = stack.replaced(cassandra_port=free_port())
    fast, routed = answers(unreachable, ["/v1/videos/v/views?start=2035-07-01T00:00:00Z&end=2035-07-02T00:00:00Z"])
    assert fast == routed
    assert fast[0][0] == 503 and fast[0][2]["retry-after"] == "1"
