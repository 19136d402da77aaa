"""The many ways clients write ``event_time``: RFC 3339 strings and integer epoch ms.

``render_event_time(ms, u)`` returns the JSON fragment for the field (quoted when it is a
string) and the epoch ms it denotes, which the ground truth uses: a seconds-only string
denotes the whole second, not the millisecond the client had in mind.
"""

from __future__ import annotations

import random
from datetime import date
from functools import lru_cache

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# (minutes east of UTC, text) for clients that send local time with their offset.
OFFSETS = ((330, "+05:30"), (-480, "-08:00"), (60, "+01:00"), (540, "+09:00"),
           (-210, "-03:30"), (0, "+00:00"), (-300, "-05:00"), (345, "+05:45"))


_CLOCK_TEXT = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]


@lru_cache(maxsize=64)
def _date_text(days: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


def civil(ms: int) -> tuple[str, str, int]:
    """("YYYY-MM-DD", "HH:MM:SS", millis) of an epoch-ms instant; no datetime, it is hot."""
    seconds, millis = divmod(ms, 1000)
    days, second_of_day = divmod(seconds, 86_400)
    return _date_text(days), _CLOCK_TEXT[second_of_day], millis


def rfc3339_millis(ms: int) -> str:
    day, clock, millis = civil(ms)
    return f"{day}T{clock}.{millis:03d}Z"


def render_event_time(ms: int, rng: random.Random) -> tuple[str, int]:
    """(JSON fragment, denoted epoch ms) in a randomly chosen but realistic style."""
    style = rng.random()
    if style < 0.22:
        return str(ms), ms
    if style < 0.67:
        day, clock, millis = civil(ms)
        return f'"{day}T{clock}.{millis:03d}Z"', ms
    if style < 0.75:
        day, clock, _ = civil(ms)
        return f'"{day}T{clock}Z"', ms - ms % 1000
    if style < 0.83:
        day, clock, millis = civil(ms)
        return f'"{day}T{clock}.{millis:03d}{int(rng.random() * 1000):03d}Z"', ms
    if style < 0.95:
        offset_minutes, offset_text = OFFSETS[int(rng.random() * len(OFFSETS))]
        day, clock, millis = civil(ms + offset_minutes * 60_000)
        return f'"{day}T{clock}.{millis:03d}{offset_text}"', ms
    if style < 0.97:
        day, clock, millis = civil(ms)
        return f'"{day}t{clock}.{millis:03d}z"', ms
    if style < 0.99:
        day, clock, millis = civil(ms)
        return f'"{day} {clock}.{millis:03d}Z"', ms
    day, clock, millis = civil(ms)
    return f'"{day}T{clock}.{millis:03d}{int(rng.random() * 1_000_000):06d}Z"', ms
