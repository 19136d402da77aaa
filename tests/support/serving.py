"""Shared by the serving tests: the API served by a real uvicorn on a free loopback port
against the real Cassandra of the stack, and writers of the rows the batch layer and
`viewcount promote` would write, so each test knows its exact counts.

The fixtures built on these (``store``, ``base_url``, ``api``, ``store_clock``,
``served_promotions``) are in ``tests/integration/conftest.py``. Each test uses days of
its own, because ``batch_promotions`` is keyed by day alone.
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

from storage import batch_results
from storage.cell_feed import send_cells
from storage.minute_counts import MinuteCount, upsert_minute_counts
from settings.environment import Settings
from tests.support.waiting import eventually

UTC = dt.timezone.utc
# The ``store`` fixture reads promotions again after this long (default 0.5 s, tested with it
# in test_serving_freshness.py); ServedPromotions moves its clock on twice this, so the next
# request sees what it wrote.
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
    """Promotes the day's version; a store already serving sees it once its snapshot of the
    promotions is old enough (ServedPromotions)."""
    batch_results.set_promotion(session, day, version)


def unpromote(session, day: dt.date) -> None:
    batch_results.delete_promotion(session, day)


class SkippingClock:
    """A served store's clock: ``time.monotonic`` plus the time a test skips, so the test
    ages what the store holds (its promotion snapshot, its provisional partitions) at once
    instead of sleeping until it is old enough."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


class ServedPromotions:
    """``promote`` and ``unpromote`` seen by the next request to a store on ``clock`` that
    reads promotions every ``refresh_s``: its clock moves on twice that, so no snapshot
    read before the write is young enough to answer (the store's own rule, serving.store)."""

    def __init__(self, session, clock: SkippingClock, refresh_s: float) -> None:
        self.session, self.clock, self.refresh_s = session, clock, refresh_s

    def promote(self, day: dt.date, version: int) -> None:
        promote(self.session, day, version)
        self.clock.skip(2 * self.refresh_s)

    def unpromote(self, day: dt.date) -> None:
        unpromote(self.session, day)
        self.clock.skip(2 * self.refresh_s)


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
    eventually(lambda: server.started or not thread.is_alive(), "uvicorn starts", interval=0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def samples(text: str) -> dict[tuple, float]:
    """/metrics text as (sample name, frozenset of label pairs) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics, name: str, **labels) -> float:
    return metrics[(name, frozenset(labels.items()))]
