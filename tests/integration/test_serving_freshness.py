"""What the API's caches promise, with the default limits (docs/api.md, "How reads are
made"): a promotion or rollback is seen within 1 s; a provisional answer lags the speed
table by at most ``VIEWCOUNT_SERVING_SPEED_CACHE_S`` (0.25 s), whether it comes from memory
or from a read in flight it joins; a final day's answer is served from memory and never
changes; concurrent misses share one read.

The provisional bound is checked on a store whose clock the test steps (``SteppedClock``):
the ages of its reads are then exactly what the test sets, however loaded the machine.
It is the bound of a worker that does not follow the cell feed (behind it, cut off from
it, or with ``VIEWCOUNT_SERVING_LIVE_PARTITIONS=0``); a worker following it answers from
partitions the feed keeps current (tests/integration/test_serving_live.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, replace

import httpx
import pytest

from serving.limits import Limits
from serving.main import app_from_env, create_app
from serving.ranges import DayWindow
from serving.store import PROMOTIONS_MAX_AGE_S, PROMOTIONS_WAIT_S, DayMinutes, ViewStore
from settings.environment import ServingKnobs
from storage.batch_results import delete_promotion, set_promotion
from tests.support.serving import (
    batch_of,
    generated_counts,
    minute_of,
    new_video,
    running,
    total,
    write_batch,
    write_speed,
)

pytestmark = pytest.mark.integration

DEFAULTS = Limits()
FROM_READS = replace(DEFAULTS, live_partitions=0)  # provisional days answered from Cassandra reads
DAY = dt.date(2033, 3, 9)
WHOLE_DAY = {"start": "2033-03-09T00:00:00Z", "end": "2033-03-10T00:00:00Z"}


@dataclass
class SteppedClock:
    """A store's clock that moves only when the test sets ``now``."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def default_store(stack):
    store = ViewStore(stack, DEFAULTS)
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(default_store):
    with running(create_app(default_store)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def views(client: httpx.Client, video_id: str) -> dict:
    response = client.get(f"/v1/videos/{video_id}/views", params=WHOLE_DAY)
    assert response.status_code == 200, response.text
    return response.json()


def one_day_of_views(cassandra_session, seed: int, days_after: int):
    """A new video's speed counts of one day written: (video, the day's window, counts, the
    counts with 1,000 more views in their first minute)."""
    video_id = new_video()
    day = DAY + dt.timedelta(days=days_after)
    counts = generated_counts(seed=seed, day=day, minutes=40)
    write_speed(cassandra_session, video_id, counts)
    midnight = minute_of(day, 0)
    updated = {**counts, min(counts): counts[min(counts)] + 1000}
    return video_id, DayWindow(day, midnight, midnight + dt.timedelta(days=1)), counts, updated


async def asked_at(store: ViewStore, clock: SteppedClock, now: float, video_id: str,
                   window: DayWindow) -> DayMinutes:
    """One request's answer for the window, looked up at ``now`` on the store's clock."""
    clock.now = now
    return (await store.day_minutes(video_id, [window]))[0]


def test_the_app_runs_with_the_defaults_these_tests_check(stack, monkeypatch):
    """``viewcount serve``'s app, the environment setting no limit, uses ``Limits()`` (the
    limits every test here runs with) and gives its provisional cache their age: so what
    these tests check of 0.25 s and 0.5 s is what the README promises of the API."""
    for variable in ServingKnobs.variables().values():
        monkeypatch.delenv(variable, raising=False)
    store = app_from_env().state.store
    try:
        assert store.limits == DEFAULTS
        assert store.speed_cache.max_age_s == store.limits.speed_cache_s == 0.25
        assert store.limits.promotion_refresh_s == 0.5
    finally:
        store.close()


def test_a_provisional_answer_lags_the_speed_table_by_at_most_the_cache_age(stack, cassandra_session):
    clock = SteppedClock()
    store = ViewStore(stack, FROM_READS, clock=clock)
    video_id = new_video()
    counts = generated_counts(seed=31, day=DAY, minutes=100)
    write_speed(cassandra_session, video_id, counts)
    try:
        with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as http:
            assert views(http, video_id)["views"] == total(counts)  # its read sent at 0 and answered
            first_minute = min(counts)
            updated = {**counts, first_minute: counts[first_minute] + 1000}
            write_speed(cassandra_session, video_id, updated)  # acknowledged after that read
            clock.now = DEFAULTS.speed_cache_s * 0.99
            assert views(http, video_id)["views"] == total(counts)  # from memory: one read serves many
            assert (store.speed_cache.hits, store.speed_cache.misses) == (1, 1)
            clock.now = DEFAULTS.speed_cache_s
            assert views(http, video_id)["views"] == total(updated)  # the bound: never older
    finally:
        store.close()


def test_a_partitions_age_counts_from_when_its_read_was_sent(stack, cassandra_session):
    """Not from when its answer came: a read answered late is that much older already."""
    video_id, window, counts, updated = one_day_of_views(cassandra_session, seed=36, days_after=3)
    clock = SteppedClock()
    store = ViewStore(stack, FROM_READS, clock=clock)

    async def requests() -> DayMinutes:
        await store.promotions()
        first = asyncio.ensure_future(asked_at(store, clock, 0.0, video_id, window))
        while store.speed_cache.misses < 1:  # until it has sent its read
            await asyncio.sleep(0)
        clock.now = DEFAULTS.speed_cache_s / 2  # when its answer is handled
        assert (await first).views == total(counts)
        write_speed(cassandra_session, video_id, updated)
        return await asked_at(store, clock, DEFAULTS.speed_cache_s, video_id, window)

    try:
        late = asyncio.run(requests())
    finally:
        store.close()
    assert late.views == total(updated) and (store.speed_cache.hits, store.speed_cache.misses) == (0, 2)


def test_a_request_joins_a_read_in_flight_only_while_it_is_younger_than_the_cache_age(stack,
                                                                                       cassandra_session):
    """A request waiting on a read sent long before it would be as far behind as that read
    is old (up to the read timeout, 5 s): it joins only a read younger than the cache age.
    Both later requests look their partition up before the first read's answer is handled
    (the loop runs them before the callbacks that answer schedules), so that read is in
    flight for both."""
    video_id, window, counts, updated = one_day_of_views(cassandra_session, seed=35, days_after=2)
    clock = SteppedClock()
    store = ViewStore(stack, FROM_READS, clock=clock)

    async def requests() -> list:
        await store.promotions()
        first = asyncio.ensure_future(asked_at(store, clock, 0.0, video_id, window))
        while store.speed_cache.misses < 1:  # until it has sent its read
            await asyncio.sleep(0)
        write_speed(cassandra_session, video_id, updated)  # acknowledged at 0, after that read was sent
        later = [asyncio.ensure_future(asked_at(store, clock, now, video_id, window))
                 for now in (DEFAULTS.speed_cache_s * 0.99, DEFAULTS.speed_cache_s)]
        return await asyncio.gather(first, *later)

    try:
        first, joined, late = asyncio.run(requests())
    finally:
        store.close()
    assert store.speed_cache.misses == 3  # none was answered from memory
    assert joined.rows is first.rows  # younger than the cache age: shared the first read
    assert late.rows is not first.rows and late.views == total(updated)  # its own read, after the write


def test_a_promotion_and_a_rollback_are_seen_within_a_second(client, cassandra_session):
    video_id = new_video()
    speed = generated_counts(seed=32, day=DAY, minutes=80)
    batch = batch_of(speed, seed=33)
    write_speed(cassandra_session, video_id, speed)
    write_batch(cassandra_session, video_id, 1, batch)
    try:
        assert views(client, video_id)["final"] is False
        set_promotion(cassandra_session, DAY, 1)
        time.sleep(1.0)
        body = views(client, video_id)
        assert (body["views"], body["final"]) == (total(batch), True)
        assert views(client, video_id) == body  # a final day's answer, from memory, unchanged
        delete_promotion(cassandra_session, DAY)
        time.sleep(1.0)
        body = views(client, video_id)
        assert (body["views"], body["final"]) == (total(speed), False)
    finally:
        delete_promotion(cassandra_session, DAY)


def test_a_slow_promotion_refresh_holds_a_request_up_only_briefly(stack):
    """The promotions read scans the table, and Cassandra never speculates a range read: a
    replica just killed holds it until it times out (5 s). Its refresh is due at
    ``promotion_refresh_s`` and no request waits for it until twice that; then a request
    waits at most ``PROMOTIONS_WAIT_S`` after it was sent and takes the snapshot it has;
    one older than ``PROMOTIONS_MAX_AGE_S`` it does not take, it waits for the read. The
    rows never change here, so every snapshot is the same mapping (a refresh reading the
    same rows keeps it): when the one answered from was read is ``_promoted_at``."""
    clock = SteppedClock()
    store = ViewStore(stack, DEFAULTS, clock=clock)
    read_rows, held = store._rows, []

    async def rows(name, parameters=()):
        if name == "promoted_days" and held:
            await held[-1].wait()  # the read stuck on a dead replica, until released
        return await read_rows(name, parameters)

    store._rows = rows
    refresh_s = DEFAULTS.promotion_refresh_s

    async def requests() -> tuple:
        first = await store.promotions()  # read at 0 and answered
        read_at = [store._promoted_at]
        held.append(asyncio.Event())
        clock.now = refresh_s  # its refresh is due and sent, and hangs
        began = time.monotonic()
        ahead = await store.promotions()
        not_waited = time.monotonic() - began
        held[-1].set()
        while store._promotions_read is not None and not store._promotions_read.done():
            await asyncio.sleep(0.01)
        snapshot = await store.promotions()  # the refresh's, read at refresh_s
        read_at.append(store._promoted_at)
        held.append(asyncio.Event())
        clock.now = refresh_s * 3  # twice the refresh interval old: needed now; sent, and hangs
        began = time.monotonic()
        during_refresh = await store.promotions()
        waited = time.monotonic() - began
        read_at.append(store._promoted_at)
        clock.now = refresh_s + PROMOTIONS_MAX_AGE_S  # the snapshot is too old to answer from
        too_old = asyncio.ensure_future(store.promotions())
        await asyncio.sleep(PROMOTIONS_WAIT_S * 2)
        waiting = not too_old.done()
        held[-1].set()
        refreshed = await too_old
        read_at.append(store._promoted_at)
        return first, ahead, not_waited, snapshot, during_refresh, waited, waiting, refreshed, read_at

    try:
        first, ahead, not_waited, snapshot, during_refresh, waited, waiting, refreshed, read_at = \
            asyncio.run(requests())
    finally:
        store.close()
    assert ahead is first and not_waited < 0.05, not_waited
    assert snapshot is first and read_at[:2] == [0, refresh_s]  # the refresh sent ahead of need landed
    assert during_refresh is snapshot and PROMOTIONS_WAIT_S <= waited < PROMOTIONS_WAIT_S + 0.2, waited
    assert read_at[2] == refresh_s  # answered from the snapshot it had, its refresh still hanging
    assert waiting and refreshed is snapshot and read_at[3] == refresh_s * 3  # the hanging read, sent then


def test_requests_missing_one_partition_together_share_one_read(stack, cassandra_session):
    video_id = new_video()
    day = DAY + dt.timedelta(days=1)
    counts = generated_counts(seed=34, day=day, minutes=60)
    write_speed(cassandra_session, video_id, counts)
    store = ViewStore(stack, FROM_READS, clock=SteppedClock())  # all sent at once, whatever the load
    midnight = minute_of(day, 0)
    window = DayWindow(day, midnight, midnight + dt.timedelta(days=1))

    async def together() -> list:
        await store.promotions()
        return await asyncio.gather(*(store.day_minutes(video_id, [window]) for _ in range(20)))

    try:
        answers = asyncio.run(together())
    finally:
        store.close()
    assert {days[0].views for days in answers} == {total(counts)}
    assert (store.speed_cache.misses, store.speed_cache.hits) == (20, 0)  # all missed at once...
    assert len({id(days[0].rows) for days in answers}) == 1  # ...and got the one read's partition
