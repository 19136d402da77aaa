"""What the API's caches promise, with the default limits (docs/api.md, "How reads are
made"): a promotion or rollback is seen within 1 s; a provisional answer lags the speed
table by at most ``VIEWCOUNT_SERVING_SPEED_CACHE_S`` (0.25 s); a final
day's answer is served from memory and never changes; concurrent misses share one read."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.ranges import DayWindow
from serving.store import ViewStore
from tests.integration.test_serving_fixtures import (
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
DAY = dt.date(2033, 3, 9)
WHOLE_DAY = {"start": "2033-03-09T00:00:00Z", "end": "2033-03-10T00:00:00Z"}


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


def test_defaults_are_within_the_bounds_the_api_promises():
    assert DEFAULTS.promotion_refresh_s <= 0.5
    assert DEFAULTS.speed_cache_s <= 0.25


def test_a_provisional_answer_lags_the_speed_table_by_at_most_the_cache_age(client, default_store,
                                                                             cassandra_session):
    video_id = new_video()
    counts = generated_counts(seed=31, day=DAY, minutes=100)
    write_speed(cassandra_session, video_id, counts)
    assert views(client, video_id)["views"] == total(counts)
    hits = default_store.speed_cache.hits
    first_minute = min(counts)
    updated = {**counts, first_minute: counts[first_minute] + 1000}
    write_speed(cassandra_session, video_id, updated)
    written_at = time.monotonic()
    seen = views(client, video_id)["views"]
    if time.monotonic() - written_at < DEFAULTS.speed_cache_s:  # answered from the partition read before
        assert seen == total(counts) and default_store.speed_cache.hits == hits + 1
    time.sleep(max(0.0, written_at + DEFAULTS.speed_cache_s - time.monotonic()))
    assert views(client, video_id)["views"] == total(updated)


def test_a_promotion_and_a_rollback_are_seen_within_a_second(client, cassandra_session):
    video_id = new_video()
    speed = generated_counts(seed=32, day=DAY, minutes=80)
    batch = batch_of(speed, seed=33)
    write_speed(cassandra_session, video_id, speed)
    write_batch(cassandra_session, video_id, 1, batch)
    try:
        assert views(client, video_id)["final"] is False
        cassandra_session.execute("INSERT INTO batch_promotions (day, version, promoted_at)"
                                  " VALUES (%s, 1, toTimestamp(now()))", (DAY,))
        time.sleep(1.0)
        body = views(client, video_id)
        assert (body["views"], body["final"]) == (total(batch), True)
        assert views(client, video_id) == body  # a final day's answer, from memory, unchanged
        cassandra_session.execute("DELETE FROM batch_promotions WHERE day = %s", (DAY,))
        time.sleep(1.0)
        body = views(client, video_id)
        assert (body["views"], body["final"]) == (total(speed), False)
    finally:
        cassandra_session.execute("DELETE FROM batch_promotions WHERE day = %s", (DAY,))


def test_requests_missing_one_partition_together_share_one_read(stack, cassandra_session):
    video_id = new_video()
    day = DAY + dt.timedelta(days=1)
    counts = generated_counts(seed=34, day=day, minutes=60)
    write_speed(cassandra_session, video_id, counts)
    store = ViewStore(stack, DEFAULTS)
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
