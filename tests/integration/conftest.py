"""Fixtures of the integration tests: the API served by a real uvicorn against the stack's
Cassandra (tests.support.serving has what they are built on)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.serving import PROMOTION_REFRESH_S, ServedPromotions, SkippingClock, running


@pytest.fixture(scope="module")
def store_clock():
    """The ``store`` fixture's clock: a test skips time on it instead of sleeping."""
    return SkippingClock()


@pytest.fixture(scope="module")
def store(stack, store_clock):
    from serving.limits import Limits
    from serving.store import ViewStore

    view_store = ViewStore(stack, Limits(max_range_days=31, cache_entries=1000,
                                         promotion_refresh_s=PROMOTION_REFRESH_S), clock=store_clock)
    yield view_store
    view_store.close()


@pytest.fixture(scope="module")
def base_url(store):
    from serving.main import create_app

    with running(create_app(store)) as url:
        yield url


@pytest.fixture()
def api(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def served_promotions(cassandra_session, store, store_clock):
    """Promotions the ``store`` fixture's next request sees."""
    return ServedPromotions(cassandra_session, store_clock, store.limits.promotion_refresh_s)
