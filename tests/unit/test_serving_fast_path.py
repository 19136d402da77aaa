"""The fast path reads a query's values exactly as Starlette (FastAPI's routes) reads them."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest

from serving.fast_path import VIEWS_PATH, query_values


def starlette_values(query_string: bytes) -> dict[str, str]:
    """What ``starlette.datastructures.QueryParams`` gives for one value per name."""
    from starlette.datastructures import QueryParams

    params = QueryParams(query_string)
    return {name: params[name] for name in params}


@pytest.mark.parametrize("query", [
    b"", b"start=a&end=b", b"end=b&start=a&start=c", b"start=&end", b"&&start=a&&", b"start=a=b",
    b"start=2026-11-25T00:00:00%2B01:00&end=x+y", b"start=%E2%82%AC&end=%zz", b"start=\xe9&end=1;2",
    b"=a&start", b"start=a%26b&end=a&b",
])
def test_values_are_starlettes(query):
    assert query_values(query) == starlette_values(query) == dict(parse_qsl(query.decode("latin-1"),
                                                                            keep_blank_values=True))


def test_values_of_random_queries_are_starlettes():
    rng = random.Random(7)
    alphabet = "se=&%+2;Z:é\x00 "
    for _ in range(20_000):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))).encode()
        assert query_values(query) == starlette_values(query), query


@pytest.mark.parametrize("path, answered", [
    ("/v1/videos/v-1_a/views", ("v-1_a", "views")),
    ("/v1/videos/v v/views/minutely", ("v v", "views/minutely")),  # a bad id: the fast path's 400
    ("/v1/videos/a/b/views", None), ("/v1/videos/v/views/", None), ("/v1/videos//views", None),
    ("/v1/videos/v/views\n", None), ("/v1/videos/v/minutely", None),
])
def test_the_paths_it_answers_are_the_views_routes(path, answered):
    match = VIEWS_PATH.fullmatch(path)
    assert (match.groups() if match else None) == answered


def test_a_minute_is_written_as_format_time_writes_it():
    """The minutely answer leaves its minutes (aware UTC, whole) to the JSON encoder."""
    import datetime as dt

    from serving.ranges import format_time
    from serving.views import encode

    midnight = dt.datetime(2026, 12, 31, tzinfo=dt.timezone.utc)
    for minute in (midnight + dt.timedelta(minutes=number) for number in range(1440)):
        assert encode(minute) == f'"{format_time(minute)}"'.encode()
