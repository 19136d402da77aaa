"""The API's limits, read once from the environment.

| variable | default | meaning |
|---|---|---|
| ``VIEWCOUNT_MAX_RANGE_DAYS`` | 31 | longest ``[start, end)`` a views query may ask for |
| ``VIEWCOUNT_MAX_TOP_LIMIT`` | 1000 | largest ``limit`` of ``/v1/top`` (the batch keeps 1,000) |
| ``VIEWCOUNT_SERVING_CACHE_ENTRIES`` | 20000 | promoted (video, day, version) partitions kept in memory |
| ``VIEWCOUNT_SERVING_TIMEOUT_S`` | 5 | Cassandra time limit per read before answering 503 |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from storage.errors import UserError

TOP_ROWS_STORED = 1000  # batch_top_videos holds the first 1,000 ranks of a day


@dataclass(frozen=True)
class Limits:
    max_range_days: int = 31
    max_top_limit: int = TOP_ROWS_STORED
    default_top_limit: int = 10
    cache_entries: int = 20_000
    read_timeout_s: float = 5.0

    @classmethod
    def from_env(cls) -> "Limits":
        limits = cls(
            max_range_days=_number("VIEWCOUNT_MAX_RANGE_DAYS", cls.max_range_days, int),
            max_top_limit=_number("VIEWCOUNT_MAX_TOP_LIMIT", cls.max_top_limit, int),
            cache_entries=_number("VIEWCOUNT_SERVING_CACHE_ENTRIES", cls.cache_entries, int),
            read_timeout_s=_number("VIEWCOUNT_SERVING_TIMEOUT_S", cls.read_timeout_s, float),
        )
        if limits.max_range_days < 1:
            raise UserError("VIEWCOUNT_MAX_RANGE_DAYS must be at least 1")
        if not 1 <= limits.max_top_limit <= TOP_ROWS_STORED:
            raise UserError(f"VIEWCOUNT_MAX_TOP_LIMIT must be between 1 and {TOP_ROWS_STORED}")
        if limits.cache_entries < 0:
            raise UserError("VIEWCOUNT_SERVING_CACHE_ENTRIES must be 0 or more")
        if limits.read_timeout_s <= 0:
            raise UserError("VIEWCOUNT_SERVING_TIMEOUT_S must be more than 0")
        return limits


def _number(name: str, default, kind):
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return kind(text)
    except ValueError:
        raise UserError(f"{name} must be a number, got {text!r}") from None
