"""Rate limiting at the edge: a client over its budget gets JSON 429s with Retry-After and
recovers; another client is unaffected; probes and scrapes are never limited; the limited
requests are counted in /metrics."""

from __future__ import annotations

import time

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.store import ViewStore
from tests.integration.test_serving_fixtures import running

pytestmark = pytest.mark.integration

BAD_DAY = "/v1/top?day=not-a-day"  # answered 400 without a Cassandra read: only the limit is tested


@pytest.fixture(scope="module")
def limited(stack):
    store = ViewStore(stack, Limits(rate_limit_rps=2, rate_limit_burst=3))
    try:
        with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client
    finally:
        store.close()


def test_a_client_over_its_budget_gets_429_and_recovers_while_another_is_unaffected(limited):
    spent = [limited.get(BAD_DAY, headers={"X-Api-Key": "greedy"}) for _ in range(3)]
    refused = limited.get(BAD_DAY, headers={"X-Api-Key": "greedy"})
    other = limited.get(BAD_DAY, headers={"X-Api-Key": "polite"})

    assert [response.status_code for response in spent] == [400, 400, 400]
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/json"
    assert refused.headers["retry-after"] == "1"
    assert list(refused.json()) == ["error"] and "rate limit exceeded: 2 requests a second" in refused.json()["error"]
    assert other.status_code == 400
    time.sleep(0.6)  # one token back at 2 a second
    assert limited.get(BAD_DAY, headers={"X-Api-Key": "greedy"}).status_code == 400


def test_health_and_metrics_are_never_limited_and_count_the_limited_requests(limited):
    for _ in range(5):
        limited.get(BAD_DAY)  # by address: the bucket runs dry
    assert limited.get(BAD_DAY).status_code == 429
    probes = [limited.get("/healthz").status_code for _ in range(10)]
    scrape = limited.get("/metrics")

    assert 429 not in probes
    assert scrape.status_code == 200
    counted = next(line for line in scrape.text.splitlines() if line.startswith("viewcount_http_rate_limited_total"))
    assert float(counted.split()[-1]) >= 2
