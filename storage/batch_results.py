"""Typed reads and writes of the batch layer's tables (migration 0004).

A day's batch writes a *version*: a ``batch_versions`` row claimed as 'running' (a
lightweight transaction, so two runs never share a number), its per-minute counts and top
videos, then the row again as 'complete' with its statistics. Promotion switches serving
to one complete version with a single-row write. Importing this module never imports
Spark: promotion and serving use it without a SparkSession.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Iterable

from settings.environment import Settings
from settings.errors import UserError

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import DataFrame

INSERT_MINUTE_VIEWS = "INSERT INTO batch_minute_views (video_id, day, version, minute, views) VALUES (?, ?, ?, ?, ?)"
# The API's reads (``storage.serving_reads``): a version's (video, day) partition whole, a
# version's top videos, every promoted day's version (a row per day), and the promotions by
# override of some days (migration 0013).
VERSION_DAY_READ = "SELECT minute, views FROM batch_minute_views WHERE video_id = ? AND day = ? AND version = ?"
TOP_VIDEOS_READ = "SELECT video_id, views FROM batch_top_videos WHERE day = ? AND version = ?"
PROMOTED_DAYS = "SELECT day, version FROM batch_promotions"
OVERRIDES_OF_DAYS = ("unreconciled_promotions", "SELECT kind FROM unreconciled_promotions WHERE day IN ?")
# The tables keyed by day alone that a day's batch runs and promotions write.
DAY_TABLES = ("batch_promotions", "batch_promotion_history", "batch_versions", "unreconciled_promotions")
RUNNING = "running"
COMPLETE = "complete"
DEFAULT_CONCURRENCY = 64


@dataclass(frozen=True)
class BatchVersion:
    """One version's row of batch_versions: its identity, what it read and where its
    counts are (the reconciler reads the cutoff, the Parquet output and the gaps)."""

    day: dt.date
    version: int
    status: str
    input_fingerprint: str
    completed_at: dt.datetime | None = None
    cutoff: dt.datetime | None = None
    parquet_uri: str | None = None
    allow_gaps: bool = False
    gaps: tuple[str, ...] = ()
    input_offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    total_views: int | None = None
    restamped_events: int | None = None
    restamped_extra_views: int | None = None
    restamped_sample: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchStats:
    """What one batch read, rejected and counted (the statistics columns of batch_versions)."""

    events_read: int
    invalid: dict[str, int]
    duplicates_removed: int
    past_cutoff: int  # valid events of D that arrived in the hour after the cutoff (as then archived)
    other_days: int
    cells: int
    total_views: int
    videos: int
    # Event ids counted in more than one minute cell (re-stamped retries), the views they
    # add beyond one per event id, and a sample "video_id/event_id: N cells".
    restamped_events: int = 0
    restamped_extra_views: int = 0
    restamped_sample: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VersionClaim:
    """A new version's identity and the input it was computed from."""

    day: dt.date
    version: int
    input_fingerprint: str
    cutoff: dt.datetime
    allow_gaps: bool
    gaps: list[str] = field(default_factory=list)
    input_offsets: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Promotion:
    day: dt.date
    version: int
    previous_version: int | None
    promoted_at: dt.datetime


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def read_versions(session: "Session", day: dt.date) -> list[BatchVersion]:
    """Every version of a day, newest first."""
    rows = session.execute(session.prepare(
        "SELECT version, status, input_fingerprint, completed_at, cutoff, parquet_uri, allow_gaps, gaps,"
        " input_offsets, total_views, restamped_events, restamped_extra_views, restamped_sample"
        " FROM batch_versions WHERE day = ?"), (day,))
    return [BatchVersion(day, row.version, row.status, row.input_fingerprint, _utc(row.completed_at),
                         _utc(row.cutoff), row.parquet_uri, bool(row.allow_gaps), tuple(row.gaps or ()),
                         {p: tuple(span) for p, span in (row.input_offsets or {}).items()}, row.total_views,
                         row.restamped_events, row.restamped_extra_views, tuple(row.restamped_sample or ()))
            for row in rows]


def claim_version(session: "Session", claim: VersionClaim) -> bool:
    """Create the version's row as 'running'; False when that number is already taken."""
    result = session.execute(session.prepare(
        "INSERT INTO batch_versions (day, version, status, input_fingerprint, started_at, cutoff, allow_gaps,"
        " gaps, input_offsets) VALUES (?, ?, ?, ?, toTimestamp(now()), ?, ?, ?, ?) IF NOT EXISTS"),
        (claim.day, claim.version, RUNNING, claim.input_fingerprint, claim.cutoff, claim.allow_gaps,
         claim.gaps, claim.input_offsets))
    return result.was_applied


def complete_version(session: "Session", claim: VersionClaim, stats: BatchStats, parquet_uri: str) -> None:
    """Mark the version complete with its statistics (after every row of it is written)."""
    session.execute(session.prepare(
        "UPDATE batch_versions SET status = ?, completed_at = toTimestamp(now()), allow_gaps = ?, gaps = ?,"
        " input_offsets = ?, events_read = ?, invalid = ?, duplicates_removed = ?, past_cutoff = ?,"
        " other_days = ?, cells = ?, total_views = ?, videos = ?, restamped_events = ?, restamped_extra_views = ?,"
        " restamped_sample = ?, parquet_uri = ? WHERE day = ? AND version = ?"),
        (COMPLETE, claim.allow_gaps, claim.gaps, claim.input_offsets, stats.events_read, stats.invalid,
         stats.duplicates_removed, stats.past_cutoff, stats.other_days, stats.cells, stats.total_views,
         stats.videos, stats.restamped_events, stats.restamped_extra_views, stats.restamped_sample, parquet_uri,
         claim.day, claim.version))


def _write_minute_views(settings: Settings, day: dt.date, version: int, concurrency: int,
                        rows: Iterable) -> None:
    from storage.cassandra import cached_session
    from storage.minute_counts import write_partition_grouped

    write_partition_grouped(
        cached_session(settings), INSERT_MINUTE_VIEWS,
        ((row.video_id, day, version, dt.datetime.fromtimestamp(row.minute_ms / 1000, dt.timezone.utc), row.views)
         for row in rows),
        key_columns=3, concurrency=concurrency,
    )


def write_batch_minute_views(counts: "DataFrame", settings: Settings, day: dt.date, version: int,
                             *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
    """Write (video_id, minute, views) rows of one day as one version, from the executors:
    prepared statements grouped per partition, at most ``concurrency`` in flight per task,
    absolute values; from their JVMs (``storage.jvm_rows``) unless
    ``VIEWCOUNT_CASSANDRA_WRITER=python``."""
    # Minutes travel as epoch millis: Python's conversion of Spark timestamps would apply
    # the worker's local time zone.
    minutes = counts.selectExpr("video_id", "unix_millis(minute) AS minute_ms", "views")
    if settings.cassandra.writer == "python":
        minutes.foreachPartition(partial(_write_minute_views, settings, day, version, concurrency))
        return
    from storage.jvm_rows import write_rows
    from storage.minute_counts import ROWS_PER_BATCH

    epoch_day = (day - dt.date(1970, 1, 1)).days
    write_rows(minutes.selectExpr("video_id", f"{epoch_day} AS day", f"{int(version)} AS version", "minute_ms",
                                  "views"),
               INSERT_MINUTE_VIEWS, settings, key_columns=3, rows_per_batch=ROWS_PER_BATCH, concurrency=concurrency)


def write_top_videos(session: "Session", day: dt.date, version: int,
                     ranked: list[tuple[int, str, int]]) -> None:
    """(rank, video_id, views) rows of one version, rank 1 = most views."""
    from cassandra.concurrent import execute_concurrent_with_args

    statement = session.prepare(
        "INSERT INTO batch_top_videos (day, version, rank, video_id, views) VALUES (?, ?, ?, ?, ?)")
    execute_concurrent_with_args(session, statement,
                                 [(day, version, rank, video_id, views) for rank, video_id, views in ranked],
                                 concurrency=DEFAULT_CONCURRENCY, raise_on_first_error=True)


def read_promotion(session: "Session", day: dt.date) -> Promotion | None:
    row = session.execute(session.prepare(
        "SELECT version, previous_version, promoted_at FROM batch_promotions WHERE day = ?"), (day,)).one()
    return Promotion(day, row.version, row.previous_version, _utc(row.promoted_at)) if row else None


def read_promotions(session: "Session", days: list[dt.date]) -> dict[dt.date, Promotion]:
    """The promotions of these days, read concurrently; days without one are absent."""
    from cassandra.concurrent import execute_concurrent_with_args

    statement = session.prepare("SELECT day, version, previous_version, promoted_at FROM batch_promotions WHERE day = ?")
    results = execute_concurrent_with_args(session, statement, [(day,) for day in days],
                                           concurrency=DEFAULT_CONCURRENCY, raise_on_first_error=True)
    promotions = {}
    for _, rows in results:
        for row in rows:
            day = row.day if isinstance(row.day, dt.date) else row.day.date()
            promotions[day] = Promotion(day, row.version, row.previous_version, _utc(row.promoted_at))
    return promotions


class PromotionConflict(UserError):
    """Another promotion or rollback of the day landed between reading and switching."""


UNRECONCILED, LOOSENED = "unreconciled", "loosened"  # the kinds of override (unreconciled_promotions.kind)


def promote(session: "Session", day: dt.date, version: int, previous: int | None, *,
            override: str | None = None, reconciliation: str | None = None,
            tolerances: dict[str, float] | None = None, command: str | None = None) -> dt.datetime:
    """Make ``version`` the day's served version, if ``previous`` is still the served one
    (None: none is); returns the promotion time.

    Serving reads only the batch_promotions row, so the switch is that one row, written as
    a compare-and-set (a lightweight transaction): Cassandra orders it by its own Paxos
    ballot, not by this host's clock, so a rollback from a host whose clock lags still
    wins, and a promotion that raced another one fails with ``PromotionConflict`` instead
    of silently overwriting it. A promotion by ``override`` of the exact gate
    (``UNRECONCILED``: no passing reconciliation; ``LOOSENED``: passed with billable
    tolerances looser than exact) is put on record in ``unreconciled_promotions``, with
    the version's ``reconciliation`` status, the ``tolerances`` it gated with and the ``command``, before the
    switch (removed again when the switch does not apply), so no override is ever served
    unrecorded; the history row follows the switch.
    """
    now = dt.datetime.now(dt.timezone.utc)
    promoted_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # Cassandra keeps milliseconds
    if override is not None:
        session.execute(session.prepare(
            "INSERT INTO unreconciled_promotions (day, promoted_at, version, status, kind, tolerances, command)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"),
            (day, promoted_at, version, reconciliation, override, tolerances or None, command))
    if previous is None:
        switch = session.execute(session.prepare(
            "INSERT INTO batch_promotions (day, version, previous_version, promoted_at) VALUES (?, ?, ?, ?)"
            " IF NOT EXISTS"), (day, version, None, promoted_at))
    else:
        switch = session.execute(session.prepare(
            "UPDATE batch_promotions SET version = ?, previous_version = ?, promoted_at = ? WHERE day = ?"
            " IF version = ?"), (version, previous, promoted_at, day, previous))
    if not switch.was_applied:
        if override is not None:
            session.execute(session.prepare(
                "DELETE FROM unreconciled_promotions WHERE day = ? AND promoted_at = ?"), (day, promoted_at))
        current = getattr(switch.one(), "version", None)
        raise PromotionConflict(
            f"day {day}: the served version changed meanwhile (expected {previous or 'none'}, found "
            f"{current or 'none'}); nothing was switched: run `viewcount promote` again")
    session.execute(session.prepare(
        "INSERT INTO batch_promotion_history (day, promoted_at, version, previous_version) VALUES (?, ?, ?, ?)"),
        (day, promoted_at, version, previous))
    return promoted_at


def read_promotion_history(session: "Session", day: dt.date) -> list[Promotion]:
    """Every promotion and rollback of a day, newest first."""
    rows = session.execute(session.prepare(
        "SELECT version, previous_version, promoted_at FROM batch_promotion_history WHERE day = ?"), (day,))
    return [Promotion(day, row.version, row.previous_version, _utc(row.promoted_at)) for row in rows]


def read_unreconciled_promotions(session: "Session", day: dt.date) -> list[tuple[dt.datetime, int, str | None]]:
    """(promoted_at, version, its reconciliation status then) of every promotion of the day
    made by override (without a passing reconciliation, or passed with loosened billable
    tolerances: ``read_promotion_overrides`` says which), newest first."""
    rows = session.execute(session.prepare(
        "SELECT promoted_at, version, status FROM unreconciled_promotions WHERE day = ?"), (day,))
    return [(_utc(row.promoted_at), row.version, row.status) for row in rows]


@dataclass(frozen=True)
class Override:
    """A promotion the exact gate did not clear, as recorded before its switch."""

    day: dt.date
    promoted_at: dt.datetime
    version: int
    kind: str  # UNRECONCILED or LOOSENED
    status: str | None  # the version's reconciliation then: 'pass', 'fail', or None for none
    tolerances: dict[str, float]  # what the version's reconciliation gated with ({}: none, or not kept)
    command: str | None


def read_promotion_overrides(session: "Session", day: dt.date) -> list[Override]:
    """Every promotion of the day made by override, newest first (a row recorded before
    migration 0013 is of kind UNRECONCILED, its command unknown)."""
    rows = session.execute(session.prepare(
        "SELECT promoted_at, version, status, kind, tolerances, command FROM unreconciled_promotions"
        " WHERE day = ?"), (day,))
    return [Override(day, _utc(row.promoted_at), row.version, row.kind or UNRECONCILED, row.status,
                     dict(row.tolerances or {}), row.command) for row in rows]


def write_version_cells(session: "Session", version: int, cells: Iterable[tuple[str, dt.datetime, int]]) -> int:
    """(video_id, minute, views) rows of one version, each stored under its minute's day
    (rows a test or a benchmark stands in for a batch run with); returns the rows written."""
    from storage.minute_counts import write_partition_grouped

    return write_partition_grouped(session, INSERT_MINUTE_VIEWS,
                                   ((video_id, minute.date(), version, minute, views) for video_id, minute, views in cells),
                                   key_columns=3)


def read_version_cells(session: "Session", day: dt.date, version: int) -> dict[tuple[str, dt.datetime], int]:
    """(video_id, minute UTC) -> views of one version, read from the whole table (a test's
    keyspace, which holds only its own versions)."""
    rows = session.execute("SELECT video_id, day, version, minute, views FROM batch_minute_views")
    return {(row.video_id, _utc(row.minute)): row.views for row in rows
            if row.day.date() == day and row.version == version}


def read_top_videos(session: "Session", day: dt.date, version: int) -> list[tuple[int, str, int]]:
    """(rank, video_id, views) rows of one version, rank 1 first."""
    rows = session.execute(session.prepare(
        "SELECT rank, video_id, views FROM batch_top_videos WHERE day = ? AND version = ?"), (day, version))
    return [(row.rank, row.video_id, row.views) for row in rows]


def read_version_row(session: "Session", day: dt.date, version: int):
    """Every column of one version's row (statistics included), as stored; None when absent."""
    return session.execute(session.prepare("SELECT * FROM batch_versions WHERE day = ? AND version = ?"),
                           (day, version)).one()


def set_promotion(session: "Session", day: dt.date, version: int) -> None:
    """Point ``day`` at ``version`` outright, without ``promote``'s checks and history (a
    test's or a benchmark's stand-in for a nightly run)."""
    session.execute(session.prepare(
        "INSERT INTO batch_promotions (day, version, promoted_at) VALUES (?, ?, toTimestamp(now()))"), (day, version))


def delete_promotion(session: "Session", day: dt.date) -> None:
    session.execute(session.prepare("DELETE FROM batch_promotions WHERE day = ?"), (day,))


def delete_day(session: "Session", day: dt.date, tables: Iterable[str] = DAY_TABLES) -> None:
    """Forget a day's versions and promotions (``tables``: some of ``DAY_TABLES``)."""
    for table in tables:
        if table not in DAY_TABLES:
            raise ValueError(f"{table} is not a table keyed by day of the batch results")
        session.execute(session.prepare(f"DELETE FROM {table} WHERE day = ?"), (day,))


def prepare_version_minute_range_read(session: "Session"):
    """The statement reading one version's cells of a partition in [first minute, end
    minute): values (video_id, day, version, first, end)."""
    return session.prepare("SELECT minute, views FROM batch_minute_views WHERE video_id = ? AND day = ?"
                           " AND version = ? AND minute >= ? AND minute < ?")
