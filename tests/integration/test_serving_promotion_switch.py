"""A promotion switching versions while clients read never yields a mix within a day:
every answer is exactly one version's count (or the speed count while no version is
promoted), with the matching `final` flag."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.support.serving import (
    PROMOTION_REFRESH_S,
    batch_of,
    generated_counts,
    new_video,
    promote,
    total,
    unpromote,
    write_batch,
    write_speed,
)

pytestmark = pytest.mark.integration

DAY = dt.date(2032, 6, 15)
READERS = 6
SECONDS = 4.0


def read_until(stop: threading.Event, base_url: str, url: str, answers: Counter, failures: list) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while not stop.is_set():
            response = client.get(url)
            if response.status_code != 200:
                failures.append(response.text)
                continue
            body = response.json()
            if "points" in body:
                answers[("minutely", sum(p["views"] for p in body["points"]),
                         frozenset(p["source"] for p in body["points"]))] += 1
            else:
                answers[(body["views"], body["final"])] += 1


def flip(stop: threading.Event, session, flips: list) -> None:
    states = [1, 2, None, 2, 1]
    while not stop.is_set():
        state = states[len(flips) % len(states)]
        promote(session, DAY, state) if state else unpromote(session, DAY)
        flips.append(state)
        time.sleep(2 * PROMOTION_REFRESH_S + 0.003)  # each state read by the served store before the next


def test_concurrent_readers_see_one_version_per_day_while_promotion_flips(base_url, cassandra_session):
    video_id = new_video()
    speed = generated_counts(seed=21, day=DAY, minutes=400)
    first, second = batch_of(speed, seed=22), batch_of(speed, seed=23)
    assert len({total(speed), total(first), total(second)}) == 3
    write_speed(cassandra_session, video_id, speed)
    write_batch(cassandra_session, video_id, 1, first)
    write_batch(cassandra_session, video_id, 2, second)

    day = f"start={DAY.isoformat()}T00:00:00Z&end={DAY + dt.timedelta(days=1)}T00:00:00Z"
    urls = [f"/v1/videos/{video_id}/views?{day}", f"/v1/videos/{video_id}/views/minutely?{day}"]
    stop, answers, failures, flips = threading.Event(), Counter(), [], []
    threads = [threading.Thread(target=read_until, args=(stop, base_url, urls[i % 2], answers, failures))
               for i in range(READERS)]
    threads.append(threading.Thread(target=flip, args=(stop, cassandra_session, flips)))
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join(30)
    unpromote(cassandra_session, DAY)

    allowed = {
        (total(first), True), (total(second), True), (total(speed), False),
        ("minutely", total(first), frozenset({"batch"})), ("minutely", total(second), frozenset({"batch"})),
        ("minutely", total(speed), frozenset({"speed"})),
    }
    assert not failures
    assert set(answers) <= allowed, {a: n for a, n in answers.items() if a not in allowed}
    assert sum(answers.values()) > 50 and len(flips) > 20
    assert {(total(first), True), (total(second), True), (total(speed), False)} <= set(answers)
