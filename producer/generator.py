"""The synthetic view stream: pure, seeded, and labelled with the truth about every record.

Of all records, ``duplicates`` are re-sends of an earlier valid record (same bytes, a
fraction of a second to five minutes later: producer and client retries), ``malformed``
break one counting rule each (every reason code in turn, shuffled), and the rest are
distinct valid views of a Zipf-popular video. ``late`` of those views carry an event_time
two minutes to eight hours before their arrival, so some fall in the previous day.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from counting.reasons import REASONS
from producer import catalog, malformed
from producer.timeformat import render_event_time

VALID = "valid"
DUPLICATE = "duplicate"
USERS = 2_000_000
RETRY_HORIZON_MS = 300_000  # a re-send comes at most five minutes after the original
MAX_RECENT = 200_000  # bound on the originals kept for re-sending


class Arrivals(Protocol):
    def take(self, count: int) -> list[int]: ...


class Record(NamedTuple):
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    label: str  # VALID, DUPLICATE or the reason code the record was built to fail with
    video: int  # catalog index of a valid or duplicate record, else -1
    event_time_ms: int  # the instant event_time denotes (valid and duplicate), else 0
    late: bool


@dataclass(frozen=True)
class Mix:
    videos: int = 10_000
    zipf: float = 1.1
    duplicates: float = 0.02
    late: float = 0.01
    malformed: float = 0.005
    hot_share: float | None = None  # the hottest video's share of views, if not its Zipf share


class _RecentOriginals:
    """Valid records sent in the last few minutes, to pick re-sends from by arrival time."""

    def __init__(self) -> None:
        self._times: list[int] = []
        self._records: list[Record] = []
        self._start = 0

    def add(self, record: Record) -> None:
        self._times.append(record.timestamp_ms)
        self._records.append(record)
        if len(self._times) % 4096 == 0:
            self._forget_before(record.timestamp_ms - RETRY_HORIZON_MS)

    def _forget_before(self, oldest_ms: int) -> None:
        start = bisect_right(self._times, oldest_ms, self._start)
        self._start = max(start, len(self._times) - MAX_RECENT)
        if self._start > MAX_RECENT:
            del self._times[: self._start], self._records[: self._start]
            self._start = 0

    def sent_about(self, target_ms: int, rng: random.Random) -> Record | None:
        """The latest original sent at or before ``target_ms``; any recent one if none is that old."""
        if self._start == len(self._times):
            return None
        index = bisect_right(self._times, target_ms, self._start) - 1
        if index < self._start:
            index = rng.randrange(self._start, len(self._times))
        return self._records[index]


class ViewGenerator:
    def __init__(self, mix: Mix, seed: int, arrivals: Arrivals) -> None:
        self.mix = mix
        self.video_ids = catalog.video_ids(mix.videos)
        self._video_keys = [video.encode() for video in self.video_ids]
        self._cumulative = catalog.zipf_cumulative_weights(mix.videos, mix.zipf, mix.hot_share)
        self._rng = random.Random(f"viewcount-produce:{seed}")
        self._arrivals = arrivals
        self._recent = _RecentOriginals()
        self._reasons: list[str] = []

    def chunk(self, count: int) -> list[Record]:
        """The next ``count`` records (fewer only when the arrivals run out)."""
        rng, mix = self._rng, self.mix
        arrivals = self._arrivals.take(count)
        videos = rng.choices(range(mix.videos), cum_weights=self._cumulative, k=len(arrivals))
        malformed_below = mix.duplicates + mix.malformed
        records = []
        for timestamp_ms, video in zip(arrivals, videos):
            kind = rng.random()
            record = None
            if kind < mix.duplicates:
                record = self._resend(timestamp_ms)
            elif kind < malformed_below:
                record = self._malformed(timestamp_ms, video)
            if record is None:
                record = self._valid(timestamp_ms, video)
                self._recent.add(record)
            records.append(record)
        return records

    def _resend(self, timestamp_ms: int) -> Record | None:
        rng = self._rng
        if rng.random() < 0.6:  # producer retry after a lost ack
            delay_ms = rng.randrange(50, 5_000)
        else:  # client retry after a timeout or reconnect
            delay_ms = int(5_000 * 60 ** rng.random())
        original = self._recent.sent_about(timestamp_ms - delay_ms, rng)
        if original is None:
            return None
        return original._replace(timestamp_ms=timestamp_ms, label=DUPLICATE)

    def _event_id(self) -> str:
        digits = f"{self._rng.getrandbits(128):032x}"
        return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{digits[16:20]}-{digits[20:]}"

    def _event_time(self, timestamp_ms: int) -> tuple[int, bool]:
        """(event time ms, late?) of a view arriving at ``timestamp_ms``."""
        rng = self._rng
        if rng.random() < self.mix.late:  # offline playback, a phone that was asleep
            return timestamp_ms - int(120_000 * 240 ** rng.random()), True
        if rng.random() < 0.02:  # a client clock a few minutes off, still within the rules
            return timestamp_ms + rng.randrange(-240_000, 240_000), False
        network_delay_ms = -1500 * math.log(1.0 - rng.random())  # exponential, mean 1.5 s
        return timestamp_ms - min(int(network_delay_ms), 60_000), False

    def _user_field(self) -> str:
        """Most views carry a user_id, some an explicit null, some none at all."""
        who = self._rng.random()
        if who < 0.75:
            return f',"user_id":"u{int(self._rng.random() * USERS)}"'
        return ',"user_id":null' if who < 0.8 else ""

    def _view_json(self, event_id: str, video_id: str, time_fragment: str, user: str) -> str:
        """One valid view in one of a few client layouts: order, spacing, extra fields vary."""
        rng = self._rng
        layout = rng.random()
        if layout < 0.75:
            return f'{{"event_id":"{event_id}","video_id":"{video_id}","event_time":{time_fragment}{user}}}'
        if layout < 0.752:  # a legal JSON escape: the parsed video_id is still the plain id
            escaped = f"\\u{ord(video_id[0]):04x}{video_id[1:]}"
            return f'{{"event_id":"{event_id}","video_id":"{escaped}","event_time":{time_fragment}{user}}}'
        if layout < 0.92:
            platform = ("ios", "android", "web", "tv")[int(rng.random() * 4)]
            client = f'{{"platform": "{platform}", "app": "5.{int(rng.random() * 40)}.1"}}'
            return (f'{{"video_id": "{video_id}", "event_id": "{event_id}", "event_time": {time_fragment}'
                    f'{user.replace(":", ": ")}, "client": {client}}}')
        return (f'{{"event_time":{time_fragment},"event_id":"{event_id}","video_id":"{video_id}"{user},'
                f'"position_s":{int(rng.random() * 3600)},"tags":["autoplay",1,null,true]}}')

    def _valid(self, timestamp_ms: int, video: int) -> Record:
        event_id = self._event_id()
        event_time_ms, late = self._event_time(timestamp_ms)
        time_fragment, denoted_ms = render_event_time(event_time_ms, self._rng)
        text = self._view_json(event_id, self.video_ids[video], time_fragment, self._user_field())
        return Record(self._video_keys[video], text.encode(), timestamp_ms, VALID, video, denoted_ms, late)

    def _malformed(self, timestamp_ms: int, video: int) -> Record:
        rng = self._rng
        if not self._reasons:  # every reason in turn, in a shuffled order
            self._reasons = list(REASONS)
            rng.shuffle(self._reasons)
        reason = self._reasons.pop()
        time_fragment, _ = render_event_time(timestamp_ms - 1000, rng)
        parts = malformed.Parts(self._event_id(), self.video_ids[video], time_fragment,
                                f"u{rng.randrange(USERS)}", timestamp_ms)
        key, value = malformed.build(reason, rng, parts)
        return Record(key, value, timestamp_ms, reason, -1, 0, False)
