"""Shared by the serving tests (no tests here): the API served by a real uvicorn on a free
loopback port against the real Cassandra of the stack, and plain-CQL writers of the rows
the batch layer and `viewcount promote` would write, so each test knows its exact counts.

Tests import the fixtures they use from this module; each uses days of its own, because
``batch_promotions`` is keyed by day alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import random
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.store import ViewStore
from storage import batch_results
from storage.cell_feed import send_cells
from storage.minute_counts import MinuteCount, upsert_minute_counts
from settings.environment import Settings

UTC = dt.timezone.utc
# The served store reads promotions again after this long (default 0.5 s, tested with it in
# test_serving_freshness.py); promote() and unpromote() wait twice this, so the next
# request sees what they wrote.
PROMOTION_REFRESH_S = 0.05
Counts = dict[dt.datetime, int]  # UTC minute -> views


def minute_of(day: dt.date, minute_of_day: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC) + dt.timedelta(minutes=minute_of_day)


def generated_counts(seed: int, day: dt.date, minutes: int = 300) -> Counts:
    """Views on ``minutes`` random minutes of ``day`` (first and last minute always in)."""
    rng = random.Random(seed)
    chosen = set(rng.sample(range(1, 1439), minutes - 2)) | {0, 1439}
    return {minute_of(day, m): rng.randint(1, 500) for m in sorted(chosen)}


def batch_of(speed: Counts, seed: int) -> Counts:
    """What a batch would say: mostly the same, some late views more, a few minutes new."""
    rng = random.Random(seed)
    batch = {minute: views + (rng.randint(1, 9) if rng.random() < 0.2 else 0)
             for minute, views in speed.items()}
    day = next(iter(speed)).date()
    for _ in range(5):
        batch.setdefault(minute_of(day, rng.randrange(1440)), rng.randint(1, 9))
    return batch


def total(counts: Counts, start: dt.datetime | None = None, end: dt.datetime | None = None) -> int:
    return sum(v for m, v in counts.items() if (start is None or m >= start) and (end is None or m < end))


def new_video() -> str:
    return f"serving-{uuid.uuid4().hex[:12]}"


def write_speed(session, video_id: str, counts: Counts) -> None:
    """Writes the cells as the counter does: to the speed table, then to the cell feed with
    the same write timestamp (API workers holding the partition take them from there)."""
    written = time.time_ns() // 1000
    upsert_minute_counts(session, (MinuteCount(video_id, m, v) for m, v in counts.items()),
                         write_timestamp=written)
    send_cells(_feed_settings(), ((video_id, minute, views) for minute, views in counts.items()), written)


@functools.cache
def _feed_settings() -> Settings:
    return Settings.from_env()


def write_batch(session, video_id: str, version: int, counts: Counts) -> None:
    batch_results.write_version_cells(session, version, ((video_id, minute, views) for minute, views in counts.items()))


def write_top(session, day: dt.date, version: int, ranking: list[tuple[str, int]]) -> None:
    batch_results.write_top_videos(session, day, version,
                                   [(rank, video_id, views) for rank, (video_id, views) in enumerate(ranking, start=1)])


def promote(session, day: dt.date, version: int) -> None:
    batch_results.set_promotion(session, day, version)
    time.sleep(2 * PROMOTION_REFRESH_S)


def unpromote(session, day: dt.date) -> None:
    batch_results.delete_promotion(session, day)
    time.sleep(2 * PROMOTION_REFRESH_S)


def iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture(scope="module")
def store(stack):
    view_store = ViewStore(stack, Limits(max_range_days=31, cache_entries=1000,
                                         promotion_refresh_s=PROMOTION_REFRESH_S))
    yield view_store
    view_store.close()


@pytest.fixture(scope="module")
def base_url(store):
    with running(create_app(store)) as url:
        yield url


@pytest.fixture()
def api(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client
