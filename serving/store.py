"""Serving's reads from Cassandra: prepared statements, token-aware (``build_cluster``),
one partition per day, the days of a range read in parallel.

The driver answers on its own I/O thread; each read's callback completes an asyncio
future, so the routes ``await`` reads and no request ties up a thread while it waits.

Most requests read nothing (a read costs the API more CPU than the HTTP around it,
docs/benchmarks.md "serving"):
- Which version of each day is promoted comes from a snapshot of ``batch_promotions``
  (one row per day), read again in the background once older than
  ``Limits.promotion_refresh_s`` (one read in flight, shared); a request answers from the
  snapshot without waiting while it is younger than twice that, so under steady traffic
  no request waits for the read (it was on the answers' tail: the read is a table scan,
  milliseconds while the counter writes). A request takes one snapshot, so a promotion
  switching versions mid-request yields the old version or the new one for a day, never
  a mix; a promotion or rollback is visible once every snapshot answered from was read
  after it (within ``2 * promotion_refresh_s``). Past that a request waits for the refresh
  at most ``PROMOTIONS_WAIT_S`` after it was sent, then takes the snapshot it replaces if
  that is younger than ``PROMOTIONS_MAX_AGE_S``: Cassandra never speculates a range read,
  so a replica just killed holds it until the read times out. A refresh that reads the
  same rows keeps the mapping it had: a new one is a change, and drops the answers kept
  encoded (``serving.answers``).
- A promoted version's (video, day) partition never changes: cached until evicted (LRU).
- A provisional day's whole (video, day) partition of the speed table is cached for
  ``Limits.speed_cache_s`` from when its read was sent, so an answer is never more than
  that behind the speed table.
- Requests missing the same partition at once share one read; a request joins a speed
  partition's read in flight only when it was sent less than ``speed_cache_s`` ago (else
  it sends its own), so waiting on a slow read (up to ``read_timeout_s``) cannot put an
  answer further behind than a cache hit.
Each partition is kept with its running totals, so a window's views are two bisections.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import functools
import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from serving.answers import Answers
from serving.cache import LruCache
from serving.limits import Limits
from serving.live import LiveFeed, LiveRows
from serving.ranges import UTC, DayWindow
from storage.cassandra import build_cluster
from storage.reconciliations import summary_from
from storage.serving_reads import (
    RECONCILED_DAYS, RECONCILIATION_READ, prepare_if_table, prepare_reads, prepare_reconciliation_read,
)
from settings.environment import Settings

if TYPE_CHECKING:
    from cassandra.cluster import ResponseFuture, Session

RECONNECT_PAUSE_S = 1.0
# The promotion snapshot's read is a range read (every token range, at the configured
# consistency). Each coordinator picks the replicas of each range itself and, unlike for a
# one-partition read, never sends a range read to another replica when one is slow: until
# the nodes convict a killed one (phi accrual, 10-20 s on this machine) every such read
# waits for it and times out after read_timeout_s (5 s), and with it every request waiting
# for the refresh (the 3-node node-loss test saw 5 s answers and 503s). A healthy read
# takes milliseconds, so a request waits at most PROMOTIONS_WAIT_S after the read was sent,
# then answers from the snapshot it has as long as that was read less than
# PROMOTIONS_MAX_AGE_S ago (the conviction plus one timed-out read); older, it waits for the
# read, and a failed read is a 503 as ever.
PROMOTIONS_WAIT_S = 0.25
PROMOTIONS_MAX_AGE_S = 30.0
NIGHTLY_REFRESH_S = 60.0  # /metrics reads the promoted and reconciled days at most this often
RECONCILED_DAYS_READ = "reconciled_days"

Minutes = tuple[tuple[dt.datetime, int], ...]  # (UTC minute, views), ascending


class StoreUnavailable(RuntimeError):
    """Cassandra cannot answer now: the API says 503, the client may retry."""


@dataclass(frozen=True)
class DayRows:
    """One (video, day) partition as read: its minutes ascending (naive UTC, as the driver
    decodes them: made aware only when a request lists them), their views, and running
    totals (``running[i]``: the views of the first ``i`` minutes)."""

    starts: tuple[dt.datetime, ...]
    views: tuple[int, ...]
    running: tuple[int, ...]

    @classmethod
    def of(cls, rows) -> "DayRows":
        starts, views = zip(*rows) if rows else ((), ())
        return cls(starts, views, (0, *itertools.accumulate(views)))

    def between(self, first: dt.datetime, end: dt.datetime) -> tuple[int, int]:
        """The index range of the minutes in ``[first, end)`` (aware UTC times)."""
        return (bisect.bisect_left(self.starts, first.replace(tzinfo=None)),
                bisect.bisect_left(self.starts, end.replace(tzinfo=None)))

    def views_in(self, first: dt.datetime, end: dt.datetime) -> int:
        low, high = self.between(first, end)
        return self.running[high] - self.running[low]

    def points_in(self, first: dt.datetime, end: dt.datetime) -> Minutes:
        low, high = self.between(first, end)
        return tuple((minute.replace(tzinfo=UTC), views)
                     for minute, views in zip(self.starts[low:high], self.views[low:high]))


@dataclass(frozen=True)
class DayMinutes:
    """One day of a request: its window's minutes from one source."""

    window: DayWindow
    version: int | None  # the promoted batch version; None: provisional (speed layer)
    rows: "DayRows | LiveRows"

    @property
    def day(self) -> dt.date:
        return self.window.day

    @property
    def final(self) -> bool:
        return self.version is not None

    @property
    def source(self) -> str:
        return "batch" if self.final else "speed"

    @property
    def views(self) -> int:
        return self.rows.views_in(self.window.first_minute, self.window.end_minute)

    @property
    def minutes(self) -> Minutes:
        return self.rows.points_in(self.window.first_minute, self.window.end_minute)


@dataclass(frozen=True)
class NightlyStatus:
    """What the nightly runs left, for the alerts on /metrics: the newest promoted day, and
    the newest reconciled day with whether its reconciliation passed (None: none yet)."""

    promoted_day: dt.date | None
    reconciled_day: dt.date | None
    reconciliation_passed: bool | None

    @classmethod
    def from_rows(cls, promoted: list, reconciled: list) -> "NightlyStatus":
        days = [_date(day) for day, version in promoted if version is not None]
        statuses = sorted((_date(day), status) for day, status in reconciled)
        newest = statuses[-1] if statuses else (None, None)
        return cls(max(days, default=None), newest[0], None if newest[1] is None else newest[1] == "pass")


def _date(value) -> dt.date:
    """A CQL ``date`` as the driver returns it (``cassandra.util.Date``, or a date)."""
    return value if isinstance(value, dt.date) else value.date()


class ViewStore:
    def __init__(self, settings: Settings, limits: Limits = Limits(),
                 clock: Callable[[], float] = time.monotonic):
        """``clock``: the time the promotion snapshot's and the speed partitions' ages count in."""
        self.settings = settings
        self.limits = limits
        self._clock = clock
        self.cache: LruCache[DayRows] = LruCache(limits.cache_entries)  # promoted partitions
        self.speed_cache: LruCache[DayRows] = LruCache(limits.cache_entries, max_age_s=limits.speed_cache_s,
                                                       clock=clock)
        self._top_cache: LruCache[tuple] = LruCache(max(limits.cache_entries // 100, 16))
        # Provisional partitions kept current by the cell feed (serving.live); while it does
        # not follow, provisional days are read from Cassandra through ``speed_cache``.
        self.live = LiveFeed(settings, limits.live_partitions, limits.live_max_lag_s)
        # The views routes' answers, encoded, while what they were built from holds (serving.answers).
        self.answers = Answers(limits.cache_entries)
        self.live.watch(self.answers)
        # partition key -> (when it was sent, the read in flight)
        self._reading: dict[tuple, tuple[float, asyncio.Future]] = {}
        self._promoted: dict[dt.date, int] = {}
        self._promoted_at = -float("inf")  # when the read behind _promoted was sent
        self._promotions_read: asyncio.Future | None = None
        self._promotions_sent_at = -float("inf")  # when _promotions_read was started
        self._lock = threading.Lock()
        self._session: Session | None = None
        self._retry_at = 0.0
        self._last_error = ""
        self.nightly: NightlyStatus | None = None
        self._nightly_read_at = -NIGHTLY_REFRESH_S

    # -- connection (blocking: run off the event loop) ------------------------------------

    def connect(self) -> "Session":
        with self._lock:
            if self._session is not None:
                return self._session
            if time.monotonic() < self._retry_at:
                raise StoreUnavailable(self._last_error)
            cluster = build_cluster(self.settings, connect_timeout=2.0)
            try:
                session = cluster.connect(self.settings.keyspace)
                self._prepare(session)
            except Exception as error:  # noqa: BLE001 - any failure: not reachable yet
                cluster.shutdown()
                self._retry_at = time.monotonic() + RECONNECT_PAUSE_S
                self._last_error = f"cassandra unavailable: {_first_line(error)}"
                raise StoreUnavailable(self._last_error) from None
            self._session = session
            return session

    def _prepare(self, session: "Session") -> None:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT
        from cassandra.policies import ConstantSpeculativeExecutionPolicy
        from cassandra.query import tuple_factory

        self._statements = prepare_reads(session)
        # The default profile (token-aware, configured consistency) answering plain tuples:
        # the driver's default row factory builds a namedtuple class for every result. A read
        # slower than speculative_s is sent once more, to the next node: when a replica dies,
        # its peers keep asking it until they see it down, and each such read would wait out
        # the timeout and answer 503.
        speculative = (ConstantSpeculativeExecutionPolicy(self.limits.speculative_s, max_attempts=1)
                       if self.limits.speculative_s > 0 else None)
        self._profile = session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, row_factory=tuple_factory, request_timeout=self.limits.read_timeout_s,
            speculative_execution_policy=speculative)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.cluster.shutdown()
                self._session = None

    async def _ready(self) -> "Session":
        session = self._session
        return session if session is not None else await asyncio.to_thread(self.connect)

    # -- reads ----------------------------------------------------------------------------

    def _send(self, session: "Session", name: str, parameters=()) -> asyncio.Future:
        """Sends one read now; the returned future completes with its rows."""
        try:
            response = session.execute_async(
                self._statements[name], parameters, execution_profile=self._profile)
        except _unavailable_errors() as error:
            raise StoreUnavailable(f"cassandra unavailable: {_first_line(error)}") from None
        return _rows_future(response)

    async def _rows(self, name: str, parameters=()) -> list:
        return list(await _finished(self._send(await self._ready(), name, parameters)))

    async def ping(self) -> str:
        """Cassandra's release version; raises StoreUnavailable when it does not answer."""
        return (await self._rows("release"))[0][0]

    async def promotions(self) -> dict[dt.date, int]:
        """Every promoted day's version, as read at most ``2 * promotion_refresh_s`` ago, or
        while its refresh is slow, at most ``PROMOTIONS_MAX_AGE_S`` ago (the returned
        mapping is never changed afterwards: a request keeps one snapshot)."""
        now = self._clock()
        age = now - self._promoted_at
        if age < self.limits.promotion_refresh_s:
            return self._promoted
        pending = self._promotions_read
        if pending is None or pending.done() or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._promotions_read = asyncio.ensure_future(self._read_promotions())
            pending.add_done_callback(_retrieved)  # a slow read may end with nobody waiting
            self._promotions_sent_at = now
        if age < self.limits.promotion_refresh_s * 2:
            return self._promoted  # read again ahead of need: no request waits for it
        if age >= PROMOTIONS_MAX_AGE_S:
            return await asyncio.shield(pending)
        wait_s = self._promotions_sent_at + PROMOTIONS_WAIT_S - now
        if wait_s > 0:
            await asyncio.wait([pending], timeout=wait_s)  # never cancels the shared read
        return pending.result() if pending.done() else self._promoted

    async def _read_promotions(self) -> dict[dt.date, int]:
        sent_at = self._clock()
        rows = await self._rows("promoted_days")
        promoted = {_date(day): version for day, version in rows if version is not None}
        if promoted != self._promoted:  # else the same mapping stays: answers built with it stay good
            self.live.drop_days(promoted.keys() - self._promoted.keys())
            self._promoted = promoted
        self._promoted_at = sent_at
        return self._promoted

    async def promoted_version(self, day: dt.date) -> int | None:
        return (await self.promotions()).get(day)

    async def day_minutes(self, video_id: str, windows: list[DayWindow],
                          promoted: dict[dt.date, int] | None = None) -> list[DayMinutes]:
        """Each day's minutes of ``video_id``, from its promoted batch (in ``promoted``, a
        snapshot of ``promotions``; by default the current one) or else the speed table."""
        promoted = await self.promotions() if promoted is None else promoted
        session = await self._ready()
        reads = [(window, promoted.get(window.day)) for window in windows]
        pending = [self._partition(session, video_id, window.day, version) for window, version in reads]
        return [DayMinutes(window, version, await _finished(rows) if isinstance(rows, asyncio.Future) else rows)
                for (window, version), rows in zip(reads, pending)]

    def _partition(self, session: "Session", video_id: str, day: dt.date,
                   version: int | None) -> "DayRows | asyncio.Future":
        """A (video, day) partition of the version, or of the speed table when ``version``
        is None: from its cache, else the read in flight for it (for the speed table, one
        sent less than ``speed_cache_s`` ago), else a read sent now."""
        if version is None and self.live.usable:
            return self._live_partition(session, video_id, day)
        if version is None:
            cache, key, name, parameters = self.speed_cache, ("speed", video_id, day), "speed", (video_id, day)
        else:
            cache, key = self.cache, ("batch", video_id, day, version)
            name, parameters = "batch", (video_id, day, version)
        rows = cache.get(key)
        if rows is not None:
            return rows
        in_flight = self._reading.get(key)
        if in_flight is not None:
            in_flight_sent_at, pending = in_flight
            fresh = version is not None or self._clock() - in_flight_sent_at < self.limits.speed_cache_s
            if fresh and pending.get_loop() is asyncio.get_running_loop():
                return _shared(pending)
        sent_at = self._clock()
        read = self._send(session, name, parameters)
        pending = read.get_loop().create_future()
        self._reading[key] = (sent_at, pending)

        def decoded(done: asyncio.Future) -> None:
            if self._reading.get(key, (None, None))[1] is pending:  # not a newer read's
                del self._reading[key]
            if done.cancelled():
                pending.cancel()
            elif done.exception() is not None:
                pending.set_exception(done.exception())
            else:
                rows = DayRows.of(list(done.result()))
                cache.put(key, rows, read_at=sent_at)
                pending.set_result(rows)

        read.add_done_callback(decoded)
        pending.add_done_callback(_retrieved)
        return _shared(pending)

    def _live_partition(self, session: "Session", video_id: str, day: dt.date) -> "LiveRows | asyncio.Future":
        """A provisional partition held by ``live``, else its read (with each cell's write
        timestamp) in flight or sent now, held once it lands (``LiveFeed.fill``)."""
        key = (video_id, day)
        held = self.live.get(key)
        if held is not None:
            return LiveRows(day, held)
        in_flight = self._reading.get(("live", video_id, day))
        if in_flight is not None and in_flight[1].get_loop() is asyncio.get_running_loop():
            return _shared(in_flight[1])
        token = self.live.begin_fill(key)
        try:
            read = self._send(session, "speed_live", key)
        except StoreUnavailable:
            self.live.abandon_fill(key)
            raise
        pending = read.get_loop().create_future()
        self._reading[("live", video_id, day)] = (self._clock(), pending)

        def landed(done: asyncio.Future) -> None:
            if self._reading.get(("live", video_id, day), (None, None))[1] is pending:
                del self._reading[("live", video_id, day)]
            if done.cancelled() or done.exception() is not None:
                self.live.abandon_fill(key)
                pending.cancel() if done.cancelled() else pending.set_exception(done.exception())
            else:
                pending.set_result(LiveRows(day, self.live.fill(key, done.result(), token)))

        read.add_done_callback(landed)
        pending.add_done_callback(_retrieved)
        return _shared(pending)

    async def top_videos(self, day: dt.date, version: int) -> tuple[tuple[str, int], ...]:
        """The promoted version's top videos by rank (at most 1,000)."""
        videos = self._top_cache.get((day, version))
        if videos is None:
            videos = tuple((video_id, views) for video_id, views in await self._rows("top", (day, version)))
            self._top_cache.put((day, version), videos)
        return videos

    async def reconciliation(self, day: dt.date) -> dict | None:
        """The reconcile layer's summary of ``day``; None until that layer writes one."""
        session = await self._ready()
        if RECONCILIATION_READ not in self._statements:
            statement = prepare_reconciliation_read(session, self.settings.keyspace)
            if statement is None:
                return None
            self._statements[RECONCILIATION_READ] = statement
        rows = await self._rows(RECONCILIATION_READ, (day,))
        return summary_from(rows[0][0] if rows else None)

    async def optional_rows(self, read: tuple[str, str], parameters=()) -> list | None:
        """The rows of ``read``, (table, CQL) of a table a migration added (prepared on first
        use); None while the keyspace has no such table."""
        session = await self._ready()
        table, cql = read
        if cql not in self._statements:
            statement = prepare_if_table(session, self.settings.keyspace, table, cql)
            if statement is None:
                return None
            self._statements[cql] = statement
        return await self._rows(cql, parameters)

    async def refresh_nightly(self) -> NightlyStatus | None:
        """``nightly``, read again when older than ``NIGHTLY_REFRESH_S``; on a failed read
        the last one known stays (and the alert on its age still fires)."""
        if time.monotonic() - self._nightly_read_at < NIGHTLY_REFRESH_S:
            return self.nightly
        session = await self._ready()
        if RECONCILED_DAYS_READ not in self._statements:
            statement = prepare_reconciliation_read(session, self.settings.keyspace, RECONCILED_DAYS)
            if statement is not None:
                self._statements[RECONCILED_DAYS_READ] = statement
        promoted = (await self.promotions()).items()
        reconciled = await self._rows(RECONCILED_DAYS_READ) if RECONCILED_DAYS_READ in self._statements else []
        self.nightly = NightlyStatus.from_rows(promoted, reconciled)
        self._nightly_read_at = time.monotonic()
        return self.nightly


def _rows_future(response: "ResponseFuture") -> asyncio.Future:
    """An asyncio future completed (on the loop's thread) by the driver's callbacks."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    future.add_done_callback(_retrieved)

    def settle(outcome, failed: bool) -> None:
        if not future.done():
            future.set_exception(outcome) if failed else future.set_result(outcome)

    response.add_callbacks(lambda rows: loop.call_soon_threadsafe(settle, rows, False),
                           lambda error: loop.call_soon_threadsafe(settle, error, True))
    return future


def _retrieved(future: asyncio.Future) -> None:
    """A future left unawaited (the other reads of a failed request, a read its client
    stopped waiting for) must not log "exception was never retrieved"."""
    future.cancelled() or future.exception()


def _shared(pending: asyncio.Future) -> asyncio.Future:
    """A wait on a read others may share: cancelling the wait leaves the read running."""
    wait = asyncio.shield(pending)
    wait.add_done_callback(_retrieved)
    return wait


async def _finished(future: asyncio.Future):
    try:
        return await future
    except _unavailable_errors() as error:
        raise StoreUnavailable(f"cassandra unavailable: {_first_line(error)}") from None


@functools.cache
def _unavailable_errors() -> tuple[type[BaseException], ...]:
    from cassandra import OperationTimedOut, RequestExecutionException
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    return (NoHostAvailable, OperationTimedOut, RequestExecutionException, ConnectionException)


def _first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]
