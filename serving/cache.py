"""A bounded, thread-safe least-recently-used cache that counts its hits and misses
(``/metrics``): cachetools' ``LRUCache`` behind a lock.

Serving keeps only rows that never change in it: a promoted batch version's rows are
immutable, so a key that names the version can never go stale.
"""

from __future__ import annotations

import threading
from typing import Generic, Hashable, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class LruCache(Generic[V]):
    def __init__(self, max_entries: int):
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self._entries: LRUCache[Hashable, V] = LRUCache(maxsize=max(max_entries, 1))
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._entries.get(key)  # a hit makes the key the most recently used
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.max_entries == 0:
            return
        with self._lock:
            self._entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)
