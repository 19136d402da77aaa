"""The views routes' answers kept encoded, until what they were built from changes.

A views answer is a function of the range asked, of which version of each day is promoted
(``ViewStore.promotions``' snapshot) and of the provisional partitions the worker holds
(``serving.live``). Clients ask the same ranges over and over (a dashboard's window, whole
days), so an answer is kept, as the bytes sent, under (route, video, start, end) as the
request spelled them, and dropped when any of that changes:

- the promotions snapshot is another one (``ViewStore`` keeps the same mapping while its
  refreshes read the same rows, so a new one means a promotion or a rollback): all dropped;
- a cell of a held partition of the video is pushed, or such a partition is dropped for
  room (``LiveFeed`` calls ``changed``): that video's answers dropped;
- the worker stops following the feed (``LiveFeed`` calls ``clear``): all dropped, and an
  answer with a provisional day is only ever kept while every such day came from a held
  partition (one read from Cassandra through the speed cache, or a partition not held,
  would not hear of its later changes).

Only the loop's thread uses it. Bounded (least recently asked dropped first); its hits,
misses and entries are in ``/metrics`` (cache "answers").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

AnswerKey = tuple[str, str, str, str]  # (route, video_id, start, end) as the request spelled them


class Answers:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._bodies: OrderedDict[AnswerKey, bytes] = OrderedDict()
        self._of_video: dict[str, set[AnswerKey]] = {}
        self._promoted: Mapping | None = None  # the snapshot the kept answers were built with
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, key: AnswerKey, promoted: Mapping) -> bytes | None:
        """The kept answer, built with ``promoted`` (the request's snapshot), or None."""
        if promoted is not self._promoted:
            self.clear()
            self._promoted = promoted
        body = self._bodies.get(key)
        if body is None:
            self.misses += 1
            return None
        self._bodies.move_to_end(key)
        self.hits += 1
        return body

    def put(self, key: AnswerKey, body: bytes, promoted: Mapping) -> None:
        """Keeps an answer built with ``promoted`` from held partitions current now."""
        if promoted is not self._promoted or self.max_entries == 0:
            return  # built with a snapshot since replaced
        self._bodies[key] = body
        self._of_video.setdefault(key[1], set()).add(key)
        while len(self._bodies) > self.max_entries:
            dropped, _ = self._bodies.popitem(last=False)
            keys = self._of_video.get(dropped[1])
            if keys is not None:
                keys.discard(dropped)
                if not keys:
                    del self._of_video[dropped[1]]

    def changed(self, video_id: str) -> None:
        """A held partition of the video changed or was dropped: its answers go."""
        for key in self._of_video.pop(video_id, ()):
            del self._bodies[key]

    def clear(self) -> None:
        self._bodies.clear()
        self._of_video.clear()
