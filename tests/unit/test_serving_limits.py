"""The API's limits from the environment, and the bounded cache of promoted partitions."""

from __future__ import annotations

import pytest

from serving.cache import LruCache
from serving.limits import Limits
from settings.environment import ServingKnobs
from settings.errors import UserError


def test_defaults(monkeypatch):
    for name in ("VIEWCOUNT_MAX_RANGE_DAYS", "VIEWCOUNT_MAX_TOP_LIMIT",
                 "VIEWCOUNT_SERVING_CACHE_ENTRIES", "VIEWCOUNT_SERVING_TIMEOUT_S",
                 "VIEWCOUNT_SERVING_PROMOTION_REFRESH_S", "VIEWCOUNT_SERVING_SPEED_CACHE_S"):
        monkeypatch.delenv(name, raising=False)
    assert Limits.from_knobs(ServingKnobs.from_env()) == Limits(max_range_days=31, max_top_limit=1000, cache_entries=20_000,
                                       read_timeout_s=5.0, promotion_refresh_s=0.5, speed_cache_s=0.25)


def test_from_env(monkeypatch):
    monkeypatch.setenv("VIEWCOUNT_MAX_RANGE_DAYS", "7")
    monkeypatch.setenv("VIEWCOUNT_MAX_TOP_LIMIT", "50")
    monkeypatch.setenv("VIEWCOUNT_SERVING_CACHE_ENTRIES", "0")
    monkeypatch.setenv("VIEWCOUNT_SERVING_TIMEOUT_S", "0.5")
    monkeypatch.setenv("VIEWCOUNT_SERVING_PROMOTION_REFRESH_S", "0.25")
    monkeypatch.setenv("VIEWCOUNT_SERVING_SPEED_CACHE_S", "0")
    limits = Limits.from_knobs(ServingKnobs.from_env())
    assert (limits.max_range_days, limits.max_top_limit, limits.cache_entries, limits.read_timeout_s,
            limits.promotion_refresh_s, limits.speed_cache_s) == (7, 50, 0, 0.5, 0.25, 0.0)


@pytest.mark.parametrize("name, value, message", [
    ("VIEWCOUNT_MAX_RANGE_DAYS", "week", "must be a number"),
    ("VIEWCOUNT_MAX_RANGE_DAYS", "0", "at least 1"),
    ("VIEWCOUNT_MAX_TOP_LIMIT", "1001", "must be at most 1000, got .1001."),
    ("VIEWCOUNT_SERVING_CACHE_ENTRIES", "-1", "must be at least 0"),
    ("VIEWCOUNT_SERVING_TIMEOUT_S", "0", "more than 0"),
    ("VIEWCOUNT_SERVING_PROMOTION_REFRESH_S", "0", "more than 0"),
    ("VIEWCOUNT_SERVING_SPEED_CACHE_S", "61", "at most 60"),
])
def test_bad_values_are_user_errors(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=message):
        Limits.from_knobs(ServingKnobs.from_env())


def test_cache_keeps_the_most_recently_used():
    cache = LruCache(2)
    cache.put("a", (1,))
    cache.put("b", (2,))
    assert cache.get("a") == (1,)  # a is now the most recent
    cache.put("c", (3,))
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ((1,), None, (3,))
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (3, 1)


def test_cache_keeps_empty_values_and_size_zero_keeps_nothing():
    cache = LruCache(1)
    cache.put("none", ())
    assert cache.get("none") == ()
    disabled = LruCache(0)
    disabled.put("a", (1,))
    assert disabled.get("a") is None


def test_an_entry_past_its_age_is_a_miss_counted_from_when_it_was_read():
    now = [100.0]
    cache = LruCache(4, max_age_s=1.0, clock=lambda: now[0])
    cache.put("read a while ago", (1,), read_at=99.5)
    cache.put("read now", (2,))
    now[0] = 100.4
    assert (cache.get("read a while ago"), cache.get("read now")) == ((1,), (2,))
    now[0] = 100.5  # the first is 1 s old: gone, though put only 0.5 s ago
    assert (cache.get("read a while ago"), cache.get("read now")) == (None, (2,))
    assert (cache.hits, cache.misses, len(cache)) == (3, 1, 1)
    never = LruCache(4, max_age_s=0)
    never.put("a", (1,))
    assert never.get("a") is None
