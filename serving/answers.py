"""The views routes' answers kept encoded, until what they were built from changes.

A views answer is a function of the range asked, of which version of each day is promoted
(``ViewStore.promotions``' snapshot) and of the provisional partitions the worker holds
(``serving.live``). Clients ask the same ranges over and over (a dashboard's window, whole
days), so an answer is kept, as the bytes sent, under (route, video, start, end) as the
request spelled them, and dropped when any of that changes:

- the promotions snapshot is another one (``ViewStore`` keeps the same mapping while its
  refreshes read the same rows, so a new one means a promotion or a rollback): all dropped;
- a cell of a held provisional partition (video, day) is pushed, or the partition is
  dropped for room (``LiveFeed`` calls ``changed``): the answers built from it dropped (an
  answer of final days only is not one of them);
- the worker stops following the feed (``LiveFeed`` calls ``clear``): all dropped, and an
  answer with a provisional day is only ever kept while every such day came from a held
  partition (one read from Cassandra through the speed cache, or a partition not held,
  would not hear of its later changes).

Only the loop's thread uses it. Bounded (least recently asked dropped first); its hits,
misses and entries are in ``/metrics`` (cache "answers").
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Iterable, Mapping

AnswerKey = tuple[str, str, str, str]  # (route, video_id, start, end) as the request spelled them
Partition = tuple[str, dt.date]  # (video_id, day)


class Answers:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        # each answer with the held partitions it was built from
        self._bodies: OrderedDict[AnswerKey, tuple[bytes, tuple[Partition, ...]]] = OrderedDict()
        self._built_from: dict[Partition, set[AnswerKey]] = {}
        self._promoted: Mapping | None = None  # the snapshot the kept answers were built with
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, key: AnswerKey, promoted: Mapping) -> bytes | None:
        """The kept answer, built with ``promoted`` (the request's snapshot), or None."""
        if promoted is not self._promoted:
            self.clear()
            self._promoted = promoted
        entry = self._bodies.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._bodies.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: AnswerKey, body: bytes, promoted: Mapping, held: Iterable[Partition]) -> None:
        """Keeps an answer built with ``promoted`` and from the ``held`` partitions (its
        provisional days, each current now)."""
        if promoted is not self._promoted or self.max_entries == 0:
            return  # built with a snapshot since replaced
        self._drop(key)
        held = tuple(held)
        self._bodies[key] = (body, held)
        for partition in held:
            self._built_from.setdefault(partition, set()).add(key)
        while len(self._bodies) > self.max_entries:
            self._drop(next(iter(self._bodies)))

    def changed(self, partition: Partition) -> None:
        """A held partition changed or was dropped: the answers built from it go."""
        for key in list(self._built_from.get(partition, ())):
            self._drop(key)

    def clear(self) -> None:
        self._bodies.clear()
        self._built_from.clear()

    def _drop(self, key: AnswerKey) -> None:
        entry = self._bodies.pop(key, None)
        if entry is None:
            return
        for partition in entry[1]:
            keys = self._built_from[partition]
            keys.discard(key)
            if not keys:
                del self._built_from[partition]
