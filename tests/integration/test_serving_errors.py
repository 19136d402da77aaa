"""Every bad request gets a 4xx with a JSON {"error": ...} body, never a 500; Cassandra
not answering is a 503, and only a real server fault is a (JSON) 500."""

from __future__ import annotations

import time

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.store import ViewStore
from tests.support.ports import free_port
from tests.support.serving import running

pytestmark = pytest.mark.integration

DAY = "start=2026-11-25T00:00:00Z&end=2026-11-26T00:00:00Z"


def assert_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    assert fragment in body["error"]


@pytest.mark.parametrize("path", ["views", "views/minutely"])
@pytest.mark.parametrize("url, fragment", [
    ("/v1/videos/bad.id/{path}?" + DAY, "video_id must be"),
    ("/v1/videos/" + "x" * 65 + "/{path}?" + DAY, "video_id must be"),
    ("/v1/videos/v%20v/{path}?" + DAY, "video_id must be"),
    ("/v1/videos/v/{path}?start=yesterday&end=2026-11-26T00:00:00Z", "start must be an RFC 3339"),
    ("/v1/videos/v/{path}?start=2026-11-25T00:00:00Z&end=2026-11-26", "end must be an RFC 3339"),
    ("/v1/videos/v/{path}?start=2026-11-25T00:00:00&end=2026-11-26T00:00:00Z", "start must be"),
    ("/v1/videos/v/{path}?start=2026-02-30T00:00:00Z&end=2026-03-02T00:00:00Z", "not a valid time"),
    ("/v1/videos/v/{path}?start=2026-11-25T00:00:00Z&end=2026-11-25T00:00:00Z", "end must be after start"),
    ("/v1/videos/v/{path}?start=2026-11-26T00:00:00Z&end=2026-11-25T00:00:00Z", "end must be after start"),
    ("/v1/videos/v/{path}?start=2026-11-25T00:00:10Z&end=2026-11-25T00:00:50Z", "no minute start"),
    ("/v1/videos/v/{path}?start=2026-01-01T00:00:00Z&end=2026-03-01T00:00:00Z", "maximum of 31 days"),
    ("/v1/videos/v/{path}?start=2026-11-25T00:00:00Z", "end: Field required"),
    ("/v1/videos/v/{path}", "start: Field required"),
])
def test_bad_view_queries_are_400(api, path, url, fragment):
    assert_error(api.get(url.format(path=path)), 400, fragment)


@pytest.mark.parametrize("url, fragment", [
    ("/v1/top?day=2026-11-31", "not a calendar date"),
    ("/v1/top?day=26-11-25", "day must be YYYY-MM-DD"),
    ("/v1/top", "day: Field required"),
    ("/v1/top?day=2026-11-25&limit=0", "limit must be between 1 and 1000"),
    ("/v1/top?day=2026-11-25&limit=1001", "limit must be between 1 and 1000"),
    ("/v1/top?day=2026-11-25&limit=-3", "limit must be between 1 and 1000"),
    ("/v1/top?day=2026-11-25&limit=ten", "limit: Input should be a valid integer"),
    ("/v1/reconciliations/2026-13-01", "not a calendar date"),
    ("/v1/reconciliations/last-tuesday", "day must be YYYY-MM-DD"),
])
def test_bad_days_and_limits_are_400(api, url, fragment):
    assert_error(api.get(url), 400, fragment)


def test_unknown_paths_and_methods_are_json_too(api):
    assert_error(api.get("/v2/nothing"), 404, "Not Found")
    assert_error(api.get("/v1/videos/a/b/views?" + DAY), 404, "Not Found")
    assert_error(api.post("/v1/videos/v/views?" + DAY), 405, "Method Not Allowed")


def test_a_day_without_a_reconciliation_is_404(api):
    assert_error(api.get("/v1/reconciliations/2026-11-25"), 404, "no reconciliation for day 2026-11-25")


def test_healthz_answers_ok_when_cassandra_answers(api):
    deadline = time.monotonic() + 15
    while True:  # the worker's follower connects to the cell feed beside start-up
        response = api.get("/healthz")
        body = response.json()
        if body["live"]["state"] != "starting" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (response.status_code, body["status"], body["cassandra"]) == (200, "ok", "up")
    assert body["live"]["state"] == "following" and "views" in body["live"]["detail"]
    assert set(body["live"]) == {"state", "detail", "lag_seconds", "partitions"}


def test_cassandra_unreachable_is_503_on_every_read_and_on_healthz(stack):

    unreachable = ViewStore(stack.replaced(cassandra_port=free_port()), Limits())
    with running(create_app(unreachable)) as url, httpx.Client(base_url=url, timeout=30) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["cassandra"] == "down" and "cassandra unavailable" in health.json()["error"]
        for path in ("/v1/videos/v/views?" + DAY, "/v1/videos/v/views/minutely?" + DAY,
                     "/v1/top?day=2026-11-25", "/v1/reconciliations/2026-11-25"):
            assert_error(client.get(path), 503, "cassandra unavailable")
        assert_error(client.get("/v1/videos/bad.id/views?" + DAY), 400, "video_id")  # input first
    unreachable.close()


def test_a_real_server_fault_is_a_json_500_without_details(store):
    app = create_app(store)

    @app.get("/broken")
    def broken():
        raise RuntimeError("secret internals")

    with running(app) as url:
        response = httpx.get(url + "/broken")
    assert_error(response, 500, "internal server error")
    assert "secret" not in response.text


@pytest.mark.parametrize("url, character", [
    ("/v1/videos/v/views?start=" + "9" * 60_000 + "&end=2026-11-26T00:00:00Z", "9"),
    ("/v1/top?day=" + "2" * 60_000, "2"),
    ("/v1/reconciliations/" + "2" * 60_000, "2"),
])
def test_a_huge_bad_input_is_not_echoed_back(api, url, character):
    response = api.get(url)
    assert_error(response, 400, repr(character * 40) + "... (60000 characters)")
    assert len(response.content) < 300


def test_the_schema_documents_the_errors_the_api_answers(api):
    """400 ``{"error"}`` for bad input, never FastAPI's 422, which this API does not answer."""
    schema = api.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            assert "422" not in operation["responses"], path
            if path.startswith("/v1/"):
                error = operation["responses"]["400"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, path
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    views = {p["name"]: p["schema"] for p in schema["paths"]["/v1/videos/{video_id}/views"]["get"]["parameters"]}
    assert views["video_id"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    assert views["start"]["format"] == views["end"]["format"] == "date-time"
