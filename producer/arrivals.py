"""When records arrive (their Kafka timestamps, epoch ms).

``DayArrivals`` spreads a fixed number of records over one UTC day: a diurnal curve (quiet
around 08:00 UTC, busiest around 20:00 UTC) times a dozen random burst episodes of a few
minutes each (a video going viral, a push notification). ``LiveArrivals`` is the wall clock.
Both hand out non-decreasing timestamps in chunks.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timezone
from typing import Callable

import numpy as np

MS_PER_MINUTE = 60_000
MINUTES_PER_DAY = 1440
BUSIEST_HOUR_UTC = 20
QUIETEST_SHARE = 0.2  # traffic at the quietest minute relative to the busiest (before bursts)
BURSTS_PER_DAY = 12


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1000


def minute_weights(rng: np.random.Generator) -> np.ndarray:
    """Relative traffic of each minute of a day: diurnal curve times burst multipliers."""
    minutes = np.arange(MINUTES_PER_DAY)
    phase = 2 * math.pi * (minutes / MINUTES_PER_DAY - BUSIEST_HOUR_UTC / 24)
    weights = QUIETEST_SHARE + (1 - QUIETEST_SHARE) * (1 + np.cos(phase)) / 2
    for _ in range(rng.poisson(BURSTS_PER_DAY)):
        start = int(rng.integers(0, MINUTES_PER_DAY))
        length = int(rng.integers(1, 6))
        weights[start:start + length] *= rng.uniform(3.0, 12.0)
    return weights / weights.sum()


class DayArrivals:
    """``total`` arrival times over the UTC day ``day``, deterministic given ``seed``."""

    def __init__(self, day: date, total: int, seed: int) -> None:
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xA881])))
        self._start_ms = day_start_ms(day)
        self._per_minute = self._rng.multinomial(total, minute_weights(self._rng)).tolist()
        self._minute = -1
        self._pending: list[int] = []  # arrivals of the current minute, in order
        self._next = 0  # index of the first one not yet taken

    def _next_minute(self) -> None:
        self._minute += 1
        count = self._per_minute[self._minute]
        offsets = np.sort(self._rng.integers(0, MS_PER_MINUTE, size=count))
        self._pending = (offsets + self._start_ms + self._minute * MS_PER_MINUTE).tolist()
        self._next = 0

    def take(self, count: int) -> list[int]:
        taken: list[int] = []
        while len(taken) < count:
            if self._next == len(self._pending):
                if self._minute + 1 >= MINUTES_PER_DAY:
                    break
                self._next_minute()
                continue
            end = min(len(self._pending), self._next + count - len(taken))
            taken.extend(self._pending[self._next:end])
            self._next = end
        return taken


class LiveArrivals:
    """Arrival is now: every record of a chunk gets the clock reading at generation time."""

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def take(self, count: int) -> list[int]:
        return [self._clock_ms()] * count
