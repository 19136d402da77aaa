"""Builders for the tests of ``serving.live`` without Kafka: a feed that follows, the rows
a read returns and the cells the feed pushes, on one day."""

from __future__ import annotations

import datetime as dt

from serving.live import FOLLOWING, LiveFeed
from settings.environment import Settings
from storage.cell_feed import Cell

DAY = dt.date(2031, 5, 6)


def following(max_partitions: int = 10) -> LiveFeed:
    feed = LiveFeed(Settings.defaults(), max_partitions=max_partitions, max_lag_s=1.0)
    feed.state = FOLLOWING
    return feed


def row(minute: int, views: int, written: int, day: dt.date = DAY) -> tuple:
    """A row of the speed_live read: naive UTC minute, views, write timestamp."""
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute), views, written


def cell(video: str, minute: int, views: int, written: int, day: dt.date = DAY) -> Cell:
    return Cell(video, day, minute, views, written)
