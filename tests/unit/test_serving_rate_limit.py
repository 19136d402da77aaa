"""The per-client token bucket, on a clock the test moves."""

from __future__ import annotations

import pytest

from serving.rate_limit import TokenBuckets, client_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_client_spends_its_burst_then_waits_for_the_refill():
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)

    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back every 0.5 s
    clock.now += 0.5
    assert buckets.take("a") == 0 and buckets.take("a") == pytest.approx(0.5)
    clock.now += 10  # a long pause refills to the burst, no further
    assert [buckets.take("a") for _ in range(4)][:3] == [0, 0, 0] and buckets.take("a") > 0


def test_clients_have_buckets_of_their_own():
    buckets = TokenBuckets(rate=1, burst=1, clock=Clock())

    assert buckets.take("a") == 0 and buckets.take("a") > 0
    assert buckets.take("b") == 0


def test_the_client_is_its_address_whatever_key_it_sends():
    keyed = {"headers": [(b"x-api-key", b"k1")], "client": ("127.0.0.9", 5000)}
    other_key = {"headers": [(b"x-api-key", b"k2"), (b"accept", b"*/*")], "client": ("127.0.0.9", 5001)}

    assert client_of(keyed) == client_of(other_key) == "address:127.0.0.9"
    assert client_of({"headers": [(b"x-api-key", b"k1")], "client": ("127.0.0.8", 5000)}) == "address:127.0.0.8"
    assert client_of({"headers": []}) == "address:unknown"


@pytest.mark.parametrize("rate, burst", [(0, 5), (-1, 5), (1, 0)])
def test_a_bucket_needs_a_rate_and_a_burst(rate, burst):
    with pytest.raises(ValueError):
        TokenBuckets(rate=rate, burst=burst)
