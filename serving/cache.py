"""A bounded, thread-safe least-recently-used cache that counts its hits and misses
(``/metrics``): cachetools' ``LRUCache`` behind a lock, with an optional age limit.

Serving keeps two: a promoted batch version's partitions, which never change (a key that
names the version can never go stale, so no age limit), and the speed table's partitions
of provisional days, each kept ``max_age_s`` after its read was *sent*, so an answer from
it is never more than ``max_age_s`` behind the speed table.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class LruCache(Generic[V]):
    def __init__(self, max_entries: int, max_age_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: LRUCache[Hashable, tuple[float, V]] = LRUCache(maxsize=max(max_entries, 1))
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._entries.get(key)  # a hit makes the key the most recently used
            if entry is not None and self.max_age_s is not None and self._clock() - entry[0] >= self.max_age_s:
                del self._entries[key]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, value: V, read_at: float | None = None) -> None:
        """``read_at``: when the value was read (the ``clock``'s time), its age counts from then."""
        if self.max_entries == 0 or self.max_age_s == 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() if read_at is None else read_at, value)

    def __len__(self) -> int:
        return len(self._entries)
