"""A worker's provisional partitions kept current by the cell feed (``serving.live``), on
the real Kafka and Cassandra: read once, then updated by pushes; never a cell going
backwards; a worker started late, one whose topic is deleted, one cut off from its
broker, and a partition evicted and asked again all give the speed table's numbers.

Cells are written as the counter writes them (``write_speed``: the speed table, then the
feed, with one write timestamp). Writing the speed table *without* publishing stands for
what a worker cannot see through the feed: its answer then shows whether it read Cassandra.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.store import ViewStore
from storage.cell_feed import send_cells
from storage.minute_counts import MinuteCount, upsert_minute_counts
from storage.topics import delete_topics, ensure_topics
from tests.support.ports import free_port
from tests.support.serving import (
    SkippingClock, generated_counts, minute_of, new_video, running, total, write_speed,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DAY = dt.date(2034, 6, 1)
WHOLE_DAY = {"start": "2034-06-01T00:00:00Z", "end": "2034-06-02T00:00:00Z"}


def views(http: httpx.Client, video_id: str) -> int:
    response = http.get(f"/v1/videos/{video_id}/views", params=WHOLE_DAY)
    assert response.status_code == 200, response.text
    return response.json()["views"]


def live_state(http: httpx.Client) -> dict:
    return http.get("/healthz").json()["live"]


def following(http: httpx.Client) -> dict:
    return eventually(lambda: (state := live_state(http))["state"] == "following" and state,
                      "the worker follows the cell feed")


def unpublished(session, video_id: str, counts: dict) -> None:
    """Speed-table cells no worker hears of through the feed (a newer write timestamp)."""
    upsert_minute_counts(session, (MinuteCount(video_id, minute, views) for minute, views in counts.items()),
                         write_timestamp=time.time_ns() // 1000)


def new_minute(counts: dict, after: int = 0) -> dt.datetime:
    """A minute of DAY ``counts`` has no views in (the ``after``-th such from the start)."""
    free = (minute_of(DAY, number) for number in range(1440))
    return [minute for minute in free if minute not in counts][after]


@pytest.fixture()
def served(stack):
    """A worker with the default limits, served; yields (store, HTTP client)."""
    store = ViewStore(stack, Limits())
    with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as http:
        following(http)
        yield store, http
    store.close()


def test_a_partition_is_read_once_and_then_kept_current_by_the_feed(served, cassandra_session):
    store, http = served
    video_id = new_video()
    counts = generated_counts(seed=71, day=DAY, minutes=60)
    write_speed(cassandra_session, video_id, counts)
    assert views(http, video_id) == total(counts)
    misses = store.live.misses
    for step in range(1, 4):
        updated = {**counts, min(counts): counts[min(counts)] + step, new_minute(counts, step): step}
        write_speed(cassandra_session, video_id, updated)
        eventually(lambda: views(http, video_id) == total(updated), f"update {step} answered")
        counts = updated
    assert store.live.misses == misses  # no read again: the pushes kept it current
    assert store.live.hits >= 3 and len(store.live) >= 1
    hits = store.answers.hits
    assert [views(http, video_id) for _ in range(3)] == [total(counts)] * 3
    assert store.answers.hits >= hits + 2  # asked again with nothing changed: the answer kept


def test_a_cell_older_than_the_one_held_never_undoes_it(served, cassandra_session, stack):
    store, http = served
    video_id = new_video()
    counts = generated_counts(seed=72, day=DAY, minutes=30)
    write_speed(cassandra_session, video_id, counts)
    assert views(http, video_id) == total(counts)
    first = min(counts)
    applied = store.live.cells_applied
    send_cells(stack, [(video_id, first, counts[first] + 500)], write_timestamp=1)  # written long ago
    eventually(lambda: store.live.cells_applied > applied, "the old cell taken in")
    assert views(http, video_id) == total(counts)


def test_a_worker_started_after_the_cells_were_written_answers_them(stack, cassandra_session):
    video_id = new_video()
    counts = generated_counts(seed=73, day=DAY, minutes=90)
    write_speed(cassandra_session, video_id, counts)
    store = ViewStore(stack, Limits())
    with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as http:
        following(http)
        assert views(http, video_id) == total(counts)
        assert store.live.get((video_id, DAY)) is not None
        more = {**counts, new_minute(counts): 7}
        write_speed(cassandra_session, video_id, more)
        eventually(lambda: views(http, video_id) == total(more), "a push after the late start")
    store.close()


def test_an_evicted_partition_is_read_again_on_its_next_request(stack, cassandra_session):
    """Holding is only seen while the worker follows throughout: on a machine loaded enough
    for it to leave the feed (every held partition dropped, ``resyncs`` counts it) the
    scenario is run again, with new videos, up to three times."""
    store = ViewStore(stack, Limits(live_partitions=2))
    with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as http:
        for attempt in range(3):
            following(http)
            resyncs, evictions = store.live.resyncs, store.live.evictions
            videos = [new_video() for _ in range(3)]
            counts = {video: generated_counts(seed=74 + number, day=DAY, minutes=20)
                      for number, video in enumerate(videos)}
            for video in videos:
                write_speed(cassandra_session, video, counts[video])
            answered = [views(http, video) for video in videos]
            held_first, evicted = store.live.get((videos[0], DAY)) is not None, store.live.evictions - evictions
            changed = {**counts[videos[0]], min(counts[videos[0]]): 1}
            unpublished(cassandra_session, videos[0], changed)  # while it is not held
            again = views(http, videos[0])
            if store.live.resyncs == resyncs and live_state(http)["state"] == "following":
                break
        assert store.live.resyncs == resyncs, "the worker left the feed in each of three attempts"
        assert answered == [total(counts[video]) for video in videos]
        assert evicted == 1 and not held_first
        assert again == total(changed)
        assert store.live.evictions == evictions + 2  # room for it: the next one out
        assert f"viewcount_serving_live_evictions_total {evictions + 2:.1f}" in http.get("/metrics").text
    store.close()


def test_a_worker_whose_topic_is_deleted_answers_from_cassandra_and_follows_it_again(stack, cassandra_session):
    topic = f"test-cells-{uuid.uuid4().hex[:10]}"
    settings = stack.replaced(cells_topic=topic)
    ensure_topics(settings, {topic: 2})
    clock = SkippingClock()
    store = ViewStore(settings, Limits(), clock=clock)
    video_id = new_video()
    counts = generated_counts(seed=77, day=DAY, minutes=40)
    try:
        with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as http:
            following(http)
            write_speed(cassandra_session, video_id, counts)  # published elsewhere: read, then held
            assert views(http, video_id) == total(counts)
            delete_topics(settings, [topic])
            state = eventually(lambda: (live := live_state(http))["state"] == "unreachable" and live,
                               "the deleted topic noticed")
            assert topic in state["detail"] or "partition" in state["detail"], state
            assert state["partitions"] == 0  # what it held is dropped
            changed = {**counts, min(counts): counts[min(counts)] + 40}
            unpublished(cassandra_session, video_id, changed)
            clock.skip(Limits().speed_cache_s)  # the partition read before is too old to answer
            assert views(http, video_id) == total(changed)  # from Cassandra, not the dropped partition
            ensure_topics(settings, {topic: 2})
            following(http)
            assert views(http, video_id) == total(changed)
            latest = {**changed, max(changed): changed[max(changed)] + 3}
            written = time.time_ns() // 1000
            upsert_minute_counts(cassandra_session, (MinuteCount(video_id, m, v) for m, v in latest.items()),
                                 write_timestamp=written)
            send_cells(settings, ((video_id, m, v) for m, v in latest.items()), written)
            eventually(lambda: views(http, video_id) == total(latest), "a push on the new topic")
    finally:
        store.close()
        delete_topics(settings, [topic])


def test_a_worker_cut_off_from_kafka_says_so_and_answers_from_cassandra(stack, cassandra_session):
    clock = SkippingClock()
    store = ViewStore(stack.replaced(kafka_bootstrap=f"127.0.0.1:{free_port()}"), Limits(), clock=clock)
    video_id = new_video()
    counts = generated_counts(seed=78, day=DAY, minutes=30)
    unpublished(cassandra_session, video_id, counts)
    with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as http:
        health = http.get("/healthz")
        assert health.status_code == 200  # Cassandra answers: the API serves
        assert health.json()["live"]["state"] in ("starting", "unreachable")
        eventually(lambda: live_state(http)["state"] == "unreachable", "no broker noticed")
        assert views(http, video_id) == total(counts)
        changed = {**counts, min(counts): 0}
        unpublished(cassandra_session, video_id, changed)
        clock.skip(Limits().speed_cache_s)  # the partition read before is too old to answer
        assert views(http, video_id) == total(changed)
        assert 'viewcount_serving_live_state{state="unreachable"} 1.0' in http.get("/metrics").text
    store.close()
