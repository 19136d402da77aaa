"""The held provisional partitions of ``serving.live``, without Kafka: what a read and the
feed's cells make of a partition, whatever their order; eviction; dropping on a stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc

import pytest

from serving.live import BEHIND, FOLLOWING, LiveFeed, LiveRows
from storage.cell_feed import encode
from tests.support.live import DAY, cell, following, row

UTC = dt.timezone.utc
MIDNIGHT = dt.datetime.combine(DAY, dt.time(), tzinfo=UTC)


def answer(feed: LiveFeed, video: str, first: int = 0, end: int = 1440) -> tuple[int, tuple]:
    held = feed.get((video, DAY))
    assert held is not None, "not held"
    rows = LiveRows(DAY, held)
    window = (MIDNIGHT + dt.timedelta(minutes=first), MIDNIGHT + dt.timedelta(minutes=end))
    return rows.views_in(*window), tuple((minute.hour * 60 + minute.minute, views)
                                          for minute, views in rows.points_in(*window))


def test_a_partition_read_once_then_kept_current_by_cells():
    feed = following()
    token = feed.begin_fill(("v", DAY))
    feed.fill(("v", DAY), [row(1, 5, 100), row(3, 7, 100)], token)
    feed._apply([cell("v", 3, 9, 200), cell("v", 2, 4, 200), cell("other", 2, 50, 200)], feed._epoch)
    assert answer(feed, "v") == (18, ((1, 5), (2, 4), (3, 9)))
    assert answer(feed, "v", first=2, end=3) == (4, ((2, 4),))
    assert feed.get(("other", DAY)) is None  # a cell of a partition not held is not held


def test_a_cell_never_goes_backwards():
    feed = following()
    token = feed.begin_fill(("v", DAY))
    feed.fill(("v", DAY), [row(1, 5, 300)], token)
    feed._apply([cell("v", 1, 2, 200)], feed._epoch)  # an older write, read after the newer
    feed._apply([cell("v", 1, 5, 300)], feed._epoch)  # a replayed batch: the same value and timestamp
    assert answer(feed, "v") == (5, ((1, 5),))


def test_a_cell_pushed_while_the_read_is_in_flight_is_kept():
    feed = following()
    token = feed.begin_fill(("v", DAY))
    feed._apply([cell("v", 1, 8, 400), cell("v", 2, 1, 400)], feed._epoch)  # newer than the read
    feed.fill(("v", DAY), [row(1, 6, 300), row(2, 3, 500)], token)  # the read: minute 2 newer than the push
    assert answer(feed, "v") == (11, ((1, 8), (2, 3)))


def test_cells_in_every_position_merge_in_minute_order():
    feed = following()
    feed.fill(("v", DAY), [row(10, 1, 1), row(20, 1, 1)], feed.begin_fill(("v", DAY)))
    feed._apply([cell("v", 30, 3, 2), cell("v", 30, 4, 3), cell("v", 5, 5, 2), cell("v", 15, 6, 2),
                 cell("v", 20, 7, 2), cell("v", 10, 8, 2), cell("v", 31, 9, 2)], feed._epoch)
    assert answer(feed, "v") == (39, ((5, 5), (10, 8), (15, 6), (20, 7), (30, 4), (31, 9)))  # the day's total
    assert answer(feed, "v", first=10, end=31) == (25, ((10, 8), (15, 6), (20, 7), (30, 4)))  # a sum


class Record:
    """A record of the feed as the Kafka client gives it."""

    def __init__(self, key: bytes, value: bytes) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


def test_handed_over_slices_are_applied_one_per_turn_of_the_loop():
    """A request's callback that arrives after the follower handed over a micro-batch runs
    after its first slice, not after all of them."""
    feed = following()
    feed.fill(("v", DAY), [], feed.begin_fill(("v", DAY)))
    slices = [[Record(*encode("v", int(MIDNIGHT.timestamp() * 1000) + minute * 60_000, 1, 1))] * 2 + [Record(b"?", b"")]
              for minute in range(3)]  # and a record that is not a cell, skipped

    async def handed_over() -> tuple[int, int]:
        feed._loop = asyncio.get_running_loop()
        for cells in slices:
            feed._hand_over(cells)
        seen = asyncio.get_running_loop().create_future()
        feed._loop.call_soon(lambda: seen.set_result(feed.cells_applied))
        first = await seen
        while feed._slices or feed._draining:
            await asyncio.sleep(0)
        return first, feed.cells_applied

    assert asyncio.run(handed_over()) == (2, 6)
    assert answer(feed, "v")[0] == 3


def test_the_least_recently_asked_partition_is_dropped_for_room():
    feed = following(max_partitions=2)
    for video in ("a", "b"):
        feed.fill((video, DAY), [row(1, 1, 1)], feed.begin_fill((video, DAY)))
    assert feed.get(("a", DAY)) is not None  # "a" asked last: "b" goes first
    feed.fill(("c", DAY), [row(1, 1, 1)], feed.begin_fill(("c", DAY)))
    assert (feed.get(("b", DAY)), feed.evictions, len(feed)) == (None, 1, 2)
    assert feed.get(("a", DAY)) is not None and feed.get(("c", DAY)) is not None


def test_leaving_drops_every_partition_and_a_read_begun_before_is_not_held():
    feed = following()
    feed.fill(("a", DAY), [row(1, 1, 1)], feed.begin_fill(("a", DAY)))
    token = feed.begin_fill(("b", DAY))
    feed._leave(BEHIND, "behind")  # the follower's thread: what is held may miss cells now
    assert not feed.usable and feed.get(("a", DAY)) is None
    feed.state = FOLLOWING  # following anew, from the feed's end
    held = feed.fill(("b", DAY), [row(1, 2, 1)], token)
    assert LiveRows(DAY, held).views_in(MIDNIGHT, MIDNIGHT + dt.timedelta(days=1)) == 2  # answers its request
    assert feed.get(("b", DAY)) is None  # but was read when cells could be missed: not held
    feed._apply([cell("b", 1, 9, 9)], token)  # cells consumed before following anew
    assert feed.get(("b", DAY)) is None


def test_a_promoted_day_is_dropped():
    feed = following()
    other = DAY + dt.timedelta(days=1)
    feed.fill(("v", DAY), [row(1, 1, 1)], feed.begin_fill(("v", DAY)))
    feed.fill(("v", other), [row(1, 1, 1, other)], feed.begin_fill(("v", other)))
    feed.drop_days({DAY})
    assert feed.get(("v", DAY)) is None and feed.get(("v", other)) is not None


@pytest.mark.parametrize("partitions", [1_000])
def test_held_partitions_cost_the_garbage_collector_nothing(partitions):
    feed = following(max_partitions=partitions)
    for number in range(partitions):
        key = (f"video-{number}", DAY)
        feed.fill(key, [row(minute, 1, 1) for minute in range(10)], feed.begin_fill(key))
    gc.collect()
    held = list(feed._held.items())
    assert not any(gc.is_tracked(value) for _, value in held)
    assert not any(gc.is_tracked(key) for key, _ in held)
