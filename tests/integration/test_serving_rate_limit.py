"""Rate limiting at the edge: a client (its address) over its budget gets JSON 429s with
Retry-After and recovers; another client is unaffected; an `X-Api-Key` header neither
gives fresh budget nor spends another client's; probes and scrapes are never limited; the
limited requests are counted in /metrics. Clients at other addresses connect from other
loopback addresses (127.0.3.x)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
from contextlib import contextmanager

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.store import ViewStore
from tests.support.serve import VIEWCOUNT, wait_for_health
from tests.support.ports import free_port
from tests.support.serving import running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BAD_DAY = "/v1/top?day=not-a-day"  # answered 400 without a Cassandra read: only the limit is tested


@contextmanager
def serving(stack, limits: Limits):
    store = ViewStore(stack, limits)
    try:
        with running(create_app(store)) as url:
            yield url
    finally:
        store.close()


def client_at(url: str, address: str) -> httpx.Client:
    """A client whose requests come from ``address`` (any of 127.0.0.0/8 on Linux)."""
    return httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


@pytest.fixture(scope="module")
def limited_url(stack):
    with serving(stack, Limits(rate_limit_rps=2, rate_limit_burst=3)) as url:
        yield url


@pytest.fixture(scope="module")
def limited(limited_url):
    with httpx.Client(base_url=limited_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def starved_url(stack):
    """A bucket that refills once in 1,000 s: within a test, the burst is all there is."""
    with serving(stack, Limits(rate_limit_rps=0.001, rate_limit_burst=3)) as url:
        yield url


def test_a_client_over_its_budget_gets_429_and_recovers_while_another_is_unaffected(limited_url):
    with client_at(limited_url, "127.0.3.1") as greedy, client_at(limited_url, "127.0.3.2") as polite:
        spent = [greedy.get(BAD_DAY) for _ in range(3)]
        refused = greedy.get(BAD_DAY)
        other = polite.get(BAD_DAY)
        # one token back at 2 a second (a refused request takes none)
        recovered = eventually(lambda: (answer := greedy.get(BAD_DAY)).status_code != 429 and answer,
                               "the greedy client's next token", timeout=5)

    assert [response.status_code for response in spent] == [400, 400, 400]
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/json"
    assert refused.headers["retry-after"] == "1"
    assert list(refused.json()) == ["error"] and "rate limit exceeded: 2 requests a second" in refused.json()["error"]
    assert other.status_code == 400
    assert recovered.status_code == 400


def test_thousands_of_unknown_keys_get_no_fresh_budget(starved_url):
    with client_at(starved_url, "127.0.3.3") as rotating:
        spent = [rotating.get(BAD_DAY, headers={"X-Api-Key": "first"}).status_code for _ in range(3)]
        rotated = [rotating.get(BAD_DAY, headers={"X-Api-Key": f"key-{n}"}).status_code for n in range(5_000)]

    assert spent == [400, 400, 400]
    assert collections.Counter(rotated) == {429: 5_000}


def test_a_spoofed_key_does_not_spend_its_owners_budget(starved_url):
    with client_at(starved_url, "127.0.3.4") as owner, client_at(starved_url, "127.0.3.5") as spoofer:
        spoofed = [spoofer.get(BAD_DAY, headers={"X-Api-Key": "owner-key"}).status_code for _ in range(10)]
        owners = [owner.get(BAD_DAY, headers={"X-Api-Key": "owner-key"}).status_code for _ in range(4)]

    assert spoofed == [400] * 3 + [429] * 7  # the spoofer spends its own address's budget
    assert owners == [400, 400, 400, 429]  # the owner's is whole: its full burst, then the limit


@contextmanager
def viewcount_serve(*args: str):
    """``viewcount serve`` with a bucket of 3 that refills once in 1,000 s; yields its URL."""
    port = free_port()
    env = {**os.environ, "VIEWCOUNT_RATE_LIMIT_RPS": "0.001", "VIEWCOUNT_RATE_LIMIT_BURST": "3"}
    server = subprocess.Popen([VIEWCOUNT, "serve", "--port", str(port), *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, server)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_serve_believes_forwarded_addresses_only_from_the_proxies_it_is_given(stack):
    forwarded = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(1, 21)]
    with viewcount_serve() as url, httpx.Client(base_url=url, timeout=30) as local:
        rotating = [local.get(BAD_DAY, headers=headers).status_code for headers in forwarded]
    assert rotating == [400] * 3 + [429] * 17  # one local client, whatever address it claims

    with viewcount_serve("--forwarded-allow-ips", "127.0.0.1") as url, \
            httpx.Client(base_url=url, timeout=30) as proxy, client_at(url, "127.0.3.6") as direct:
        first = [proxy.get(BAD_DAY, headers=forwarded[0]).status_code for _ in range(4)]
        second = proxy.get(BAD_DAY, headers=forwarded[1]).status_code
        untrusted = [direct.get(BAD_DAY, headers=headers).status_code for headers in forwarded[2:7]]
    assert first == [400, 400, 400, 429] and second == 400  # behind the proxy: each client its own
    assert untrusted == [400] * 3 + [429] * 2  # not the proxy: its headers are not believed


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
