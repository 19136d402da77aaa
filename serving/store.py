"""Serving's reads from Cassandra: prepared statements, token-aware (``build_cluster``),
one partition per day, the days of a range read in parallel.

The driver answers on its own I/O thread; each read's callback completes an asyncio
future, so the routes ``await`` reads and no request ties up a thread while it waits.

For each day the promotion row is read once per request, then only that version's rows:
a promotion switching versions mid-request yields the old version or the new one for
that day, never a mix. A provisional day's speed rows are read at the same time as its
promotion row (one round trip instead of two) unless the day was promoted when last seen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from serving.cache import LruCache
from serving.limits import Limits
from serving.ranges import UTC, DayWindow
from storage.cassandra import build_cluster
from storage.reconciliations import summary_from
from storage.serving_reads import RECONCILED_DAYS, RECONCILIATION_READ, prepare_reads, prepare_reconciliation_read
from storage.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import ResponseFuture, Session

RECONNECT_PAUSE_S = 1.0
NIGHTLY_REFRESH_S = 60.0  # /metrics reads the promoted and reconciled days at most this often
RECONCILED_DAYS_READ = "reconciled_days"

Minutes = tuple[tuple[dt.datetime, int], ...]  # (UTC minute, views), ascending


class StoreUnavailable(RuntimeError):
    """Cassandra cannot answer now: the API says 503, the client may retry."""


@dataclass(frozen=True)
class DayMinutes:
    day: dt.date
    version: int | None  # the promoted batch version; None: provisional (speed layer)
    minutes: Minutes

    @property
    def final(self) -> bool:
        return self.version is not None

    @property
    def source(self) -> str:
        return "batch" if self.final else "speed"


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
    def __init__(self, settings: Settings, limits: Limits = Limits()):
        self.settings = settings
        self.limits = limits
        self.cache: LruCache[Minutes] = LruCache(limits.cache_entries)
        self._top_cache: LruCache[tuple] = LruCache(max(limits.cache_entries // 100, 16))
        self._promoted_when_seen: LruCache[bool] = LruCache(4096)
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
        from cassandra.query import tuple_factory

        self._statements = prepare_reads(session)
        # The default profile (token-aware, configured consistency) answering plain tuples:
        # the driver's default row factory builds a namedtuple class for every result.
        self._profile = session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, row_factory=tuple_factory, request_timeout=self.limits.read_timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.cluster.shutdown()
                self._session = None

    async def _ready(self) -> "Session":
        session = self._session
        return session if session is not None else await asyncio.to_thread(self.connect)

    # -- reads ----------------------------------------------------------------------------

    async def _start(self, name: str, parameters=()) -> asyncio.Future:
        """Sends one read now; the returned future completes with its rows."""
        session = await self._ready()
        try:
            response = session.execute_async(
                self._statements[name], parameters, execution_profile=self._profile)
        except _unavailable_errors() as error:
            raise StoreUnavailable(f"cassandra unavailable: {_first_line(error)}") from None
        return _rows_future(response)

    async def _rows(self, name: str, parameters=()) -> list:
        return await _finished(await self._start(name, parameters))

    async def ping(self) -> str:
        """Cassandra's release version; raises StoreUnavailable when it does not answer."""
        return (await self._rows("release"))[0][0]

    async def promoted_version(self, day: dt.date) -> int | None:
        rows = await self._rows("promotion", (day,))
        return rows[0][0] if rows else None

    async def day_minutes(self, video_id: str, windows: list[DayWindow]) -> list[DayMinutes]:
        """Each day's minutes of ``video_id``, from its promoted batch or else the speed table."""
        promotions = [await self._start("promotion", (w.day,)) for w in windows]
        speculative = {w.day: await self._read_speed(video_id, w)
                       for w in windows if not self._promoted_when_seen.get(w.day)}
        reads = []
        for window, promotion in zip(windows, promotions):
            rows = await _finished(promotion)
            version = rows[0][0] if rows else None
            self._promoted_when_seen.put(window.day, version is not None)
            if version is None:
                read = speculative.get(window.day)
                if read is None:
                    read = await self._read_speed(video_id, window)
            else:
                read = self.cache.get((video_id, window.day, version))
                if read is None:
                    read = await self._start("batch", (video_id, window.day, version))
            reads.append((window, version, read))
        return [await self._finish(video_id, *read) for read in reads]

    async def _read_speed(self, video_id: str, window: DayWindow) -> asyncio.Future:
        return await self._start("speed", (video_id, window.day, window.first_minute, window.end_minute))

    async def _finish(self, video_id: str, window: DayWindow, version: int | None, read) -> DayMinutes:
        if isinstance(read, tuple):  # a cached, immutable batch partition
            return DayMinutes(window.day, version, _within(read, window))
        minutes = tuple((minute.replace(tzinfo=UTC), views) for minute, views in await _finished(read))
        if version is None:
            return DayMinutes(window.day, None, minutes)
        self.cache.put((video_id, window.day, version), minutes)
        return DayMinutes(window.day, version, _within(minutes, window))

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
        promoted = await self._rows("promoted_days")
        reconciled = await self._rows(RECONCILED_DAYS_READ) if RECONCILED_DAYS_READ in self._statements else []
        self.nightly = NightlyStatus.from_rows(promoted, reconciled)
        self._nightly_read_at = time.monotonic()
        return self.nightly


def _rows_future(response: "ResponseFuture") -> asyncio.Future:
    """An asyncio future completed (on the loop's thread) by the driver's callbacks."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    # A read left unawaited (a speculative one, or the others of a failed request) must
    # not log "exception was never retrieved".
    future.add_done_callback(lambda done: done.cancelled() or done.exception())

    def settle(outcome, failed: bool) -> None:
        if not future.done():
            future.set_exception(outcome) if failed else future.set_result(outcome)

    response.add_callbacks(lambda rows: loop.call_soon_threadsafe(settle, rows, False),
                           lambda error: loop.call_soon_threadsafe(settle, error, True))
    return future


async def _finished(future: asyncio.Future) -> list:
    try:
        return list(await future)
    except _unavailable_errors() as error:
        raise StoreUnavailable(f"cassandra unavailable: {_first_line(error)}") from None


@functools.cache
def _unavailable_errors() -> tuple[type[BaseException], ...]:
    from cassandra import OperationTimedOut, RequestExecutionException
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    return (NoHostAvailable, OperationTimedOut, RequestExecutionException, ConnectionException)


def _within(minutes: Minutes, window: DayWindow) -> Minutes:
    if window.whole_day:
        return minutes
    return tuple(m for m in minutes if window.first_minute <= m[0] < window.end_minute)


def _first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]
