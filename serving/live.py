"""Provisional partitions held in memory and kept current by the cell feed.

Each API worker follows the counter's cell feed (``storage.cell_feed``: every micro-batch's
changed cells, published after their write to the speed table) and holds the provisional
(video, day) partitions it has been asked for. A partition it does not hold is read from
Cassandra once, on its first request, with each cell's write timestamp; from then on every
cell of the feed for it is applied in memory, keeping per cell the value with the newest
write timestamp (as Cassandra does): a cell pushed while the partition's read is in flight
is kept and merged when the read lands, so a push racing a read cannot be undone by it,
and a replayed batch (same values, same timestamp) changes nothing.

Why a held partition equals the speed table: the counter writes a cell to Cassandra
before it publishes it. A cell published before a partition's read was sent had been
written before it, so the read has it; a cell published after has an offset past the
follower's position at that moment, so the follower applies it. This needs the follower
never to skip a record while partitions are held: whenever it stops following (a broker
or the topic unreachable, or more than ``max_lag_s`` behind the feed), it drops every
partition it holds and the store answers from Cassandra reads (``serving.store``, as
without the feed) until it follows again, from the feed's end at that moment.

Held partitions are bounded (``max_partitions``, least recently asked dropped first) and
kept in a form the cyclic garbage collector does not track (three bytearrays of packed
numbers in a tuple: ``array.array`` is tracked), so a full worker costs its collections
nothing per partition. Everything that touches them runs on the event loop's
thread; the follower's thread only reads Kafka and hands the records over, undecoded: two
Python threads contend for one interpreter lock, and a follower decoding a micro-batch's
thousands of cells held it while requests waited (a waiting thread takes it back only
after the 5 ms switch interval), so the loop's thread decodes them, a slice per turn.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import json
import os
import struct
import threading
import time
from array import array
from collections import OrderedDict, deque
from typing import Callable, Iterable

from serving.ranges import UTC
from storage.cell_feed import MINUTES_PER_DAY, Cell, decode
from storage.kafka_config import QUIET_LOGGER, client_config
from settings.environment import Settings

STARTING, FOLLOWING, BEHIND, UNREACHABLE, OFF = "starting", "following", "behind", "unreachable", "off"
STATES = (STARTING, FOLLOWING, BEHIND, UNREACHABLE, OFF)
STATS_INTERVAL_MS = 250  # librdkafka's statistics: brokers' and partitions' states
STATS_MISSED_S = 1.5  # no statistics this long: the follower's thread is stuck
FETCH_WAIT_MS = 20  # a fetch finding nothing answers after this: how late a cell may be seen
RETRY_S = 1.0  # a follower that cannot follow tries again this often
# The feed's metadata is checked this often: librdkafka goes on fetching a deleted topic's
# partitions without a word, and a topic made anew under the same name starts again at 0.
METADATA_CHECK_S = 1.0
# Cells are decoded and applied this many at a time, one slice per turn of the event loop
# (``_drain``): a request arriving meanwhile waits for one slice (a few hundred
# microseconds), not for a whole micro-batch's thousands of cells.
SLICE = 64
# After a slice the loop pauses this many times the slice's own time before the next: a
# micro-batch's thousands of cells take at most half the loop for tens of milliseconds,
# not all of it, so requests arriving meanwhile do not queue behind them.
PACE = 1.0
MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)

Key = tuple[str, dt.date]  # (video_id, day)
# A held partition: minutes of the day (0..1439) ascending as unsigned 16-bit numbers, their
# views and their write timestamps as signed 64-bit ones, and the views of the whole day as
# one, each packed in a bytearray (read through short-lived memoryviews: a bytearray cannot
# grow while one is open on it). The total answers a whole day without a sum.
Held = tuple[bytearray, bytearray, bytearray, bytearray]
MINUTE_ITEM, NUMBER_ITEM = struct.Struct("=H"), struct.Struct("=q")


def _merge(held: Held, minute: int, views: int, written: int) -> None:
    minutes, counts, stamps, total = held
    with memoryview(minutes).cast("H") as held_minutes:
        last = len(held_minutes) - 1
        if last < 0 or held_minutes[last] < minute:  # the counter's usual cell: a new latest minute
            at, found = last + 1, False
        elif held_minutes[last] == minute:  # or the latest minute again
            at, found = last, True
        else:
            at = bisect.bisect_left(held_minutes, minute)
            found = held_minutes[at] == minute
    with memoryview(total).cast("q") as held_total:
        if found:
            with memoryview(stamps).cast("q") as held_stamps, memoryview(counts).cast("q") as held_counts:
                if written >= held_stamps[at]:
                    held_total[0] += views - held_counts[at]
                    held_counts[at], held_stamps[at] = views, written
            return
        held_total[0] += views
    minutes[at * 2:at * 2] = MINUTE_ITEM.pack(minute)
    counts[at * 8:at * 8] = NUMBER_ITEM.pack(views)
    stamps[at * 8:at * 8] = NUMBER_ITEM.pack(written)


class LiveRows:
    """A held partition as one request reads it (``serving.store.DayMinutes``' rows)."""

    __slots__ = ("midnight", "held")

    def __init__(self, day: dt.date, held: Held):
        self.midnight = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
        self.held = held

    def _between(self, minutes: memoryview, first: dt.datetime, end: dt.datetime) -> tuple[int, int]:
        low = (first - self.midnight) // MINUTE
        high = (end - self.midnight) // MINUTE
        return bisect.bisect_left(minutes, max(low, 0)), bisect.bisect_left(minutes, min(high, MINUTES_PER_DAY))

    def views_in(self, first: dt.datetime, end: dt.datetime) -> int:
        if first <= self.midnight and end - self.midnight >= DAY:
            return NUMBER_ITEM.unpack(self.held[3])[0]  # the whole day
        with memoryview(self.held[0]).cast("H") as minutes, memoryview(self.held[1]).cast("q") as counts:
            low, high = self._between(minutes, first, end)
            return sum(counts[low:high])

    def points_in(self, first: dt.datetime, end: dt.datetime) -> tuple[tuple[dt.datetime, int], ...]:
        with memoryview(self.held[0]).cast("H") as minutes, memoryview(self.held[1]).cast("q") as counts:
            low, high = self._between(minutes, first, end)
            return tuple((self.midnight + minutes[at] * MINUTE, counts[at]) for at in range(low, high))


class LiveFeed:
    """The provisional partitions of one worker and the follower that keeps them current."""

    def __init__(self, settings: Settings, max_partitions: int, max_lag_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.topic = settings.cells_topic
        self.max_partitions = max_partitions
        self.max_lag_s = max_lag_s
        self._clock = clock
        self._held: OrderedDict[Key, Held] = OrderedDict()
        self._filling: dict[Key, list[Cell]] = {}  # partitions whose read is in flight: cells pushed meanwhile
        self.hits = self.misses = self.evictions = 0
        self.cells_applied = 0
        self.resyncs = 0  # times the follower started following anew (from the feed's end)
        self.state = OFF if max_partitions == 0 else STARTING
        self.detail = "not started" if max_partitions else "VIEWCOUNT_SERVING_LIVE_PARTITIONS is 0"
        self.lag_records = 0
        self.lag_s = 0.0
        # Bumped (by the follower's thread) whenever it stops following: what is held was
        # kept current by records before that moment and is dropped by the loop's thread.
        self._epoch = 0
        self._held_epoch = 0
        self.watcher = _NoWatcher()  # told of every change to what is held (``watch``)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Slices (records, epoch) the follower has read, decoded and applied one per turn of the loop.
        self._slices: deque[tuple[list, int]] = deque()
        self._draining = False  # a _drain is scheduled on the loop
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the loop's side ------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.state == FOLLOWING

    def watch(self, watcher) -> None:
        """``watcher.changed((video_id, day))`` is called whenever a held partition changes
        or is dropped, and ``watcher.clear()`` when every one is
        (``serving.answers.Answers``); both on the loop's thread."""
        self.watcher = watcher

    def holds(self, key: Key, held: Held) -> bool:
        """Whether ``held`` is the partition held for ``key`` now (so kept current)."""
        return self.usable and self._held.get(key) is held

    def __len__(self) -> int:
        self._current()
        return len(self._held)

    def _current(self) -> int:
        epoch = self._epoch
        if epoch != self._held_epoch:
            self._held.clear()
            self._filling.clear()
            self._held_epoch = epoch
            self.watcher.clear()
        return epoch

    def get(self, key: Key) -> Held | None:
        """The held partition (now the most recently asked), or None: read it and ``fill``."""
        self._current()
        held = self._held.get(key)
        if held is None:
            self.misses += 1
            return None
        self._held.move_to_end(key)
        self.hits += 1
        return held

    def begin_fill(self, key: Key) -> int:
        """Before a partition's read is sent: cells pushed for it from now on are kept.
        Returns the token ``fill`` takes."""
        epoch = self._current()
        self._filling.setdefault(key, [])
        return epoch

    def fill(self, key: Key, rows: Iterable[tuple], token: int) -> Held:
        """The partition as read (rows of naive UTC minute, views, write timestamp) merged
        with the cells pushed since ``begin_fill``; held from now on if the follower has
        followed all along."""
        day_start = dt.datetime.combine(key[1], dt.time())
        minutes, counts, stamps = array("H"), array("q"), array("q")
        for minute, views, written in rows:  # ascending: appended
            minutes.append((minute - day_start) // MINUTE)
            counts.append(views)
            stamps.append(written or 0)
        held = bytearray(minutes), bytearray(counts), bytearray(stamps), bytearray(NUMBER_ITEM.pack(sum(counts)))
        pushed = self._filling.pop(key, None)
        if token != self._current() or not self.usable or pushed is None:
            return held  # answers this request; not held
        for cell in pushed:
            _merge(held, cell.minute_of_day, cell.views, cell.write_timestamp)
        self._held[key] = held
        self.watcher.changed(key)  # it may replace a partition answers were built from
        while len(self._held) > self.max_partitions:
            evicted, _ = self._held.popitem(last=False)
            self.evictions += 1
            self.watcher.changed(evicted)
        return held

    def abandon_fill(self, key: Key) -> None:
        self._filling.pop(key, None)

    def drop_days(self, days: Iterable[dt.date]) -> None:
        """Days promoted since: their provisional partitions are no longer asked for."""
        days = set(days)
        if days:
            for key in [key for key in self._held if key[1] in days]:
                del self._held[key]
                self.watcher.changed(key)

    def _drain(self) -> None:
        """On the loop's thread: applies one slice, and comes back for the next after
        ``PACE`` times as long, so requests arriving meanwhile are answered in between."""
        took = 0.0
        if self._slices:
            started = time.perf_counter()
            records, epoch = self._slices.popleft()
            self._apply(_cells(records), epoch)
            took = time.perf_counter() - started
        self._draining = False
        if self._slices:  # checked after the flag is down: a slice handed over meanwhile is not missed
            self._draining = True
            self._loop.call_later(took * PACE, self._drain)

    def _apply(self, cells: list[Cell], epoch: int) -> None:
        """On the loop's thread: one slice of the follower's cells. Slices may be applied in
        any order (per minute the newest write timestamp wins)."""
        if epoch != self._current():
            return  # consumed before the follower started anew
        held, filling, changed = self._held, self._filling, self.watcher.changed
        for cell in cells:
            key = (cell.video_id, cell.day)
            partition = held.get(key)
            if partition is not None:
                _merge(partition, cell.minute_of_day, cell.views, cell.write_timestamp)
                changed(key)
            elif key in filling:
                filling[key].append(cell)
        self.cells_applied += len(cells)

    # -- the follower ---------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.state == OFF or self._thread is not None:
            return
        self._loop = loop
        self.detail = f"connecting to {self.topic}"
        self._thread = threading.Thread(target=self._follow, name="viewcount-cell-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _leave(self, state: str, detail: str) -> None:
        """Stop following (the held partitions are dropped) and say why."""
        if self.state == FOLLOWING:
            self._epoch += 1
        self.state, self.detail = state, detail

    def _follow(self) -> None:
        from confluent_kafka import Consumer

        self._health = _Health()
        consumer = Consumer(client_config(
            self.settings, **{
                "group.id": f"viewcount-serving-{os.getpid()}-{id(self):x}",
                "enable.auto.commit": False, "enable.auto.offset.store": False,
                "auto.offset.reset": "error", "fetch.wait.max.ms": FETCH_WAIT_MS,
                "statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": self._health.stats,
                "error_cb": self._health.error, "logger": QUIET_LOGGER,
                "topic.metadata.refresh.interval.ms": 1000,
            }))
        try:
            while not self._stop.is_set():
                if not self.usable and not self._resync(consumer):
                    self._stop.wait(RETRY_S)
                    continue
                self._consume(consumer)
        finally:
            consumer.close()

    def _resync(self, consumer) -> bool:
        """Follow from the feed's end now; False (and the state says why) if it cannot."""
        from confluent_kafka import TopicPartition

        try:
            metadata = consumer.list_topics(self.topic, timeout=2.0).topics.get(self.topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                self._leave(UNREACHABLE, f"topic {self.topic} does not exist")
                return False
            partitions = [TopicPartition(self.topic, number) for number in sorted(metadata.partitions)]
            for partition in partitions:
                partition.offset = consumer.get_watermark_offsets(partition, timeout=2.0)[1]
        except Exception as error:  # noqa: BLE001 - KafkaException and friends: not reachable now
            self._leave(UNREACHABLE, f"kafka unreachable: {_first_line(error)}")
            return False
        consumer.assign(partitions)
        self._partitions = partitions
        self._health.reset(self._clock())
        self.lag_records, self.lag_s = 0, 0.0
        self.resyncs += 1
        self.state, self.detail = FOLLOWING, f"following {self.topic} from offsets " + ", ".join(
            f"{partition.partition}:{partition.offset}" for partition in partitions)
        return True

    def _consume(self, consumer) -> None:
        from confluent_kafka import KafkaError

        first = consumer.poll(0.1)
        messages = [first] if first is not None else []
        if first is not None:
            messages += consumer.consume(10_000, 0)
        records, failure = [], None
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                failure = error
        for start in range(0, len(records), SLICE):
            self._hand_over(records[start:start + SLICE])
        now = self._clock()
        if records:
            self._health.newest_ms = records[-1].timestamp()[1]
        if failure is not None:
            self._leave(UNREACHABLE, f"reading {self.topic}: {failure.str()}")
            return
        self._judge(consumer, now)

    def _hand_over(self, records: list) -> None:
        """One slice of records to the loop's thread (``_drain`` decodes and applies it, one
        slice per turn, so requests are answered between slices), then the GIL to whoever
        waits for it rather than after its switch interval (5 ms)."""
        self._slices.append((records, self._epoch))
        if not self._draining:
            self._draining = True
            self._loop.call_soon_threadsafe(self._drain)
        time.sleep(0)

    def _topic_problem(self, consumer, now: float) -> str:
        """What is wrong with the feed's topic, from metadata read at most every
        ``METADATA_CHECK_S``; "" when it still has the partitions followed."""
        if now - self._health.metadata_at < METADATA_CHECK_S:
            return ""
        self._health.metadata_at = now
        try:
            metadata = consumer.list_topics(self.topic, timeout=METADATA_CHECK_S).topics.get(self.topic)
        except Exception as error:  # noqa: BLE001 - KafkaException: the statistics will say more
            return f"kafka unreachable: {_first_line(error)}"
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return f"topic {self.topic} does not exist"
        if set(metadata.partitions) != {partition.partition for partition in self._partitions}:
            return f"the partitions of {self.topic} changed"
        return ""

    def _judge(self, consumer, now: float) -> None:
        """Whether the follower still follows: brokers and partitions fetching, and not
        more than ``max_lag_s`` behind the feed."""
        problem = self._health.problem(self.topic, now) or self._topic_problem(consumer, now)
        if problem:
            self._leave(UNREACHABLE, problem)
            return
        lag = 0
        for partition in consumer.position(self._partitions):
            high = consumer.get_watermark_offsets(partition, cached=True)[1]
            if partition.offset >= 0 and high >= 0:
                if high < partition.offset:
                    self._leave(UNREACHABLE, f"{self.topic} partition {partition.partition} is behind "
                                             "the follower's position: the topic was made anew")
                    return
                lag += high - partition.offset
        self.lag_records = lag
        # Behind: records waiting ever since ``behind_since`` and the newest one taken is
        # that old too (a burst after a quiet spell is not lag: its records are new).
        if lag == 0:
            self._health.behind_since = None
            self.lag_s = 0.0
        else:
            since = self._health.behind_since = self._health.behind_since or now
            newest_ms = self._health.newest_ms
            age = time.time() - newest_ms / 1000 if newest_ms is not None else now - since
            self.lag_s = max(min(now - since, age), 0.0)
        if self.lag_s > self.max_lag_s:
            self._leave(BEHIND, f"{lag:,} cells ({self.lag_s:.1f} s) behind {self.topic}: "
                                "answering from Cassandra, following anew from its end")


def _cells(records: list) -> list[Cell]:
    """The cells of a slice of the feed's records (anything else on the topic skipped)."""
    cells = []
    for record in records:
        try:
            cells.append(decode(record.key() or b"", record.value() or b""))
        except (ValueError, KeyError, TypeError):
            continue  # not a cell: nothing of ours to apply
    return cells


class _NoWatcher:
    def changed(self, key: Key) -> None:
        pass

    def clear(self) -> None:
        pass


class _Health:
    """What librdkafka says of the follower's brokers and partitions (its statistics, every
    ``STATS_INTERVAL_MS``, and its error callback), read on the follower's thread."""

    def __init__(self) -> None:
        self.reset(time.monotonic())

    def reset(self, now: float) -> None:
        self.stats_at = now
        self.trouble = ""  # the last problem the statistics or an error showed; "" none
        self.error_text = ""
        self.newest_ms: int | None = None
        self.behind_since: float | None = None
        self.metadata_at = now

    def error(self, error) -> None:
        from confluent_kafka import KafkaError

        # A single connection's trouble (_TRANSPORT) may be a broker the feed does not need, or
        # an idle connection closed: the statistics tell whether a partition's leader is down.
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError.UNKNOWN_TOPIC_OR_PART):
            self.error_text = error.str()

    def stats(self, text: str) -> None:
        self.stats_at = time.monotonic()
        self.error_text = ""  # a later statistics report tells the current state
        stats = json.loads(text)
        brokers = {broker.get("nodeid"): broker.get("state") for broker in stats.get("brokers", {}).values()}
        trouble = ""
        for name, topic in stats.get("topics", {}).items():
            for number, partition in topic.get("partitions", {}).items():
                if number == "-1":
                    continue  # librdkafka's internal unassigned partition
                leader = partition.get("leader", -1)
                if leader == -1 or brokers.get(leader) != "UP":
                    trouble = f"{name} partition {number}: its leader is not reachable"
                elif partition.get("fetch_state") not in ("active", "none"):
                    trouble = f"{name} partition {number}: fetch {partition.get('fetch_state')}"
        if not stats.get("topics"):
            trouble = "no partition of the feed assigned"
        self.trouble = trouble

    def problem(self, topic: str, now: float) -> str:
        if now - self.stats_at > STATS_MISSED_S:
            return "the follower has no word from its Kafka client"
        return self.error_text or self.trouble


def _first_line(error: BaseException) -> str:
    return (str(error) or type(error).__name__).splitlines()[0][:300]


class LiveCollector:
    """``/metrics`` of the feed (lookups and entries are the cache collector's, "live")."""

    def __init__(self, live: LiveFeed) -> None:
        self.live = live

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        live = self.live
        state = GaugeMetricFamily("viewcount_serving_live_state",
                                  "1 for the cell feed follower's current state: following (answers from "
                                  "memory), starting, behind or unreachable (answers from Cassandra), off",
                                  labels=["state"])
        for name in STATES:
            state.add_metric([name], 1.0 if live.state == name else 0.0)
        yield state
        yield GaugeMetricFamily("viewcount_serving_live_lag_records", "cells published and not applied yet",
                                value=live.lag_records)
        yield GaugeMetricFamily("viewcount_serving_live_lag_seconds",
                                "how far behind the cell feed the worker is", value=live.lag_s)
        yield CounterMetricFamily("viewcount_serving_live_evictions",
                                  "held provisional partitions dropped for room (least recently asked)",
                                  value=live.evictions)
        yield CounterMetricFamily("viewcount_serving_live_cells", "cells of the feed taken in",
                                  value=live.cells_applied)
        yield CounterMetricFamily("viewcount_serving_live_resyncs",
                                  "times the worker started following the feed anew, from its end",
                                  value=live.resyncs)
