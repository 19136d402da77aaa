"""Typed reads and writes of restatements (migration 0012).

A promoted day is final for serving, but records stamped inside its window can reach the
log after its final version read it. The nightly run records such a day in
``restatement_requests`` ('pending'), recomputes it as a new version, and once that
version passes its gate promotes it ('restated') with a restatement record; a gate that
fails leaves the old version serving ('failed'). Every promotion that replaces a promoted
version (a restatement, a manual promotion, a rollback) writes a ``restatements`` row and
its ``restatement_videos`` rows, so a final number never changes without a record.

The batch that computes a new version of a promoted day also stores, per video, the totals
of both versions where they differ (``batch_version_deltas``), so the promotion can write
the record without Spark. Importing this module never imports Spark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from cassandra.cluster import Session

    from storage.catalog import CatalogEntry

PENDING, RESTATED, FAILED = "pending", "restated", "failed"
# The API's reads for /metrics (``storage.serving_reads``): a topic's requests (one
# partition), and the records of some days (one partition per day); with the table each reads.
RESTATEMENT_REQUESTS = ("restatement_requests", "SELECT day, status FROM restatement_requests WHERE topic = ?")
RESTATEMENTS_OF_DAYS = ("restatements", "SELECT day FROM restatements WHERE day IN ?")
OPEN_STATUSES = (PENDING, FAILED)
CONCURRENCY = 64


@dataclass(frozen=True)
class VideoDelta:
    video_id: str
    old_views: int
    new_views: int
    money_delta: str | None = None  # exact decimal string, billable videos only
    currency: str | None = None

    @property
    def delta(self) -> int:
        return self.new_views - self.old_views


@dataclass(frozen=True)
class Restatement:
    day: dt.date
    restated_at: dt.datetime
    old_version: int
    new_version: int
    views_delta: int
    videos_changed: int
    money_delta: dict[str, str]
    reason: str
    command: str
    videos: tuple[VideoDelta, ...] = ()

    def as_dict(self) -> dict:
        return {"day": self.day.isoformat(), "restated_at": self.restated_at.isoformat(),
                "old_version": self.old_version, "new_version": self.new_version,
                "views_delta": self.views_delta, "videos_changed": self.videos_changed,
                "money_delta": dict(self.money_delta), "reason": self.reason, "command": self.command,
                "videos": [{"video_id": v.video_id, "old_views": v.old_views, "new_views": v.new_views,
                            "delta": v.delta, "money_delta": v.money_delta, "currency": v.currency}
                           for v in self.videos]}


@dataclass(frozen=True)
class Request:
    day: dt.date
    status: str
    detected_at: dt.datetime | None
    updated_at: dt.datetime | None
    served_version: int | None
    reason: str
    detail: str | None = None


@dataclass
class Counts:
    """What /metrics says of restatements: requests per status, and records per day."""

    requests: dict[str, int] = field(default_factory=dict)
    records: int = 0


def by_size(videos: Iterable[VideoDelta]) -> list[VideoDelta]:
    """Largest |delta| first, then by video id."""
    return sorted(videos, key=lambda video: (-abs(video.delta), video.video_id))


def priced(deltas: Iterable[VideoDelta], catalog: dict[str, "CatalogEntry"]) -> tuple[list[VideoDelta], dict[str, Decimal]]:
    """Each delta with its money (signed delta x rate / 1000, exact) when the catalog says
    the video is billable, largest |delta| first; and the sum per currency (never across
    currencies). A video missing from the catalog gets no money: it is not guessed. The
    promotion's restatement record and the reconciliation report price the same way."""
    from storage.catalog import UNKNOWN_CURRENCY

    videos, money = [], {}
    for video in deltas:
        entry = catalog.get(video.video_id)
        if entry is None or not entry.billable:
            videos.append(VideoDelta(video.video_id, video.old_views, video.new_views))
            continue
        currency = entry.currency or UNKNOWN_CURRENCY
        amount = (Decimal(video.delta) * Decimal(entry.rate_per_1000)).scaleb(-3)  # exact: no division
        money[currency] = money.get(currency, Decimal(0)) + amount
        videos.append(VideoDelta(video.video_id, video.old_views, video.new_views, format(amount, "f"), currency))
    return by_size(videos), dict(sorted(money.items()))


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def write_version_deltas(session: "Session", day: dt.date, version: int, against: int,
                         deltas: Iterable[tuple[str, int, int]]) -> int:
    """(video_id, old views, new views) of every video whose total differs between
    ``against`` and ``version``, then the version's ``delta_against``; returns how many."""
    from cassandra.concurrent import execute_concurrent_with_args

    statement = session.prepare(
        "INSERT INTO batch_version_deltas (day, version, against_version, video_id, old_views, new_views)"
        " VALUES (?, ?, ?, ?, ?, ?)")
    rows = [(day, version, against, video, old, new) for video, old, new in deltas]
    execute_concurrent_with_args(session, statement, rows, concurrency=CONCURRENCY, raise_on_first_error=True)
    session.execute(session.prepare("UPDATE batch_versions SET delta_against = ? WHERE day = ? AND version = ?"),
                    (against, day, version))
    return len(rows)


def read_version_deltas(session: "Session", day: dt.date, version: int, against: int) -> list[VideoDelta] | None:
    """The per-video differences ``version`` stored against ``against``; None when it
    stored none against that version (it was computed against another, or before any)."""
    row = session.execute(session.prepare(
        "SELECT delta_against FROM batch_versions WHERE day = ? AND version = ?"), (day, version)).one()
    if row is None or row.delta_against != against:
        return None
    rows = session.execute(session.prepare(
        "SELECT video_id, old_views, new_views FROM batch_version_deltas"
        " WHERE day = ? AND version = ? AND against_version = ?"), (day, version, against))
    return [VideoDelta(r.video_id, r.old_views or 0, r.new_views or 0) for r in rows]


def write_restatement(session: "Session", record: Restatement) -> None:
    """The record and its per-video rows (videos first: a record is never read without them)."""
    from cassandra.concurrent import execute_concurrent_with_args

    videos = session.prepare(
        "INSERT INTO restatement_videos (day, restated_at, video_id, old_views, new_views, money_delta, currency)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)")
    execute_concurrent_with_args(
        session, videos,
        [(record.day, record.restated_at, v.video_id, v.old_views, v.new_views, v.money_delta, v.currency)
         for v in record.videos], concurrency=CONCURRENCY, raise_on_first_error=True)
    session.execute(session.prepare(
        "INSERT INTO restatements (day, restated_at, old_version, new_version, views_delta, videos_changed,"
        " money_delta, reason, command) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        (record.day, record.restated_at, record.old_version, record.new_version, record.views_delta,
         record.videos_changed, record.money_delta, record.reason, record.command))


def delete_restatement(session: "Session", day: dt.date, restated_at: dt.datetime) -> None:
    """Remove a record written for a promotion that did not take effect (it lost a race)."""
    session.execute(session.prepare("DELETE FROM restatement_videos WHERE day = ? AND restated_at = ?"),
                    (day, restated_at))
    session.execute(session.prepare("DELETE FROM restatements WHERE day = ? AND restated_at = ?"),
                    (day, restated_at))


def read_restatements(session: "Session", day: dt.date, *, videos: bool = True) -> list[Restatement]:
    """Every restatement record of a day, newest first, with its per-video rows."""
    rows = list(session.execute(session.prepare(
        "SELECT restated_at, old_version, new_version, views_delta, videos_changed, money_delta, reason, command"
        " FROM restatements WHERE day = ?"), (day,)))
    per_video = session.prepare(
        "SELECT video_id, old_views, new_views, money_delta, currency FROM restatement_videos"
        " WHERE day = ? AND restated_at = ?")
    records = []
    for row in rows:
        deltas = tuple(VideoDelta(v.video_id, v.old_views, v.new_views, v.money_delta, v.currency)
                       for v in session.execute(per_video, (day, row.restated_at))) if videos else ()
        records.append(Restatement(day, _utc(row.restated_at), row.old_version, row.new_version, row.views_delta,
                                   row.videos_changed, dict(row.money_delta or {}), row.reason or "",
                                   row.command or "", deltas))
    return records


def write_request(session: "Session", topic: str, day: dt.date, status: str, reason: str, *,
                  served_version: int | None = None, detail: str | None = None) -> None:
    """Record (or move on) a stale day's restatement request. ``detected_at`` is kept from
    the first time the day was found stale while its request stays open."""
    now = dt.datetime.now(dt.timezone.utc)
    current = read_request(session, topic, day)
    detected = current.detected_at if current is not None and current.status in OPEN_STATUSES else now
    session.execute(session.prepare(
        "INSERT INTO restatement_requests (topic, day, status, detected_at, updated_at, served_version, reason, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"), (topic, day, status, detected, now, served_version, reason, detail))


def _request(day: dt.date, row) -> Request:
    return Request(day, row.status, _utc(row.detected_at), _utc(row.updated_at), row.served_version,
                   row.reason or "", row.detail)


def read_request(session: "Session", topic: str, day: dt.date) -> Request | None:
    row = session.execute(session.prepare(
        "SELECT status, detected_at, updated_at, served_version, reason, detail FROM restatement_requests"
        " WHERE topic = ? AND day = ?"), (topic, day)).one()
    return _request(day, row) if row is not None else None


def read_requests(session: "Session", topic: str, since: dt.date | None = None) -> list[Request]:
    """The topic's restatement requests, newest day first (from ``since`` on)."""
    if since is None:
        rows = session.execute(session.prepare(
            "SELECT day, status, detected_at, updated_at, served_version, reason, detail FROM restatement_requests"
            " WHERE topic = ?"), (topic,))
    else:
        rows = session.execute(session.prepare(
            "SELECT day, status, detected_at, updated_at, served_version, reason, detail FROM restatement_requests"
            " WHERE topic = ? AND day >= ?"), (topic, since))
    return [_request(row.day if isinstance(row.day, dt.date) else row.day.date(), row) for row in rows]


def delete_requests(session: "Session", topic: str) -> None:
    """Forget every restatement request of a topic."""
    session.execute(session.prepare("DELETE FROM restatement_requests WHERE topic = ?"), (topic,))


def delete_restatements(session: "Session", day: dt.date) -> None:
    """Forget every restatement of a day."""
    session.execute(session.prepare("DELETE FROM restatements WHERE day = ?"), (day,))


def delete_version_deltas(session: "Session", day: dt.date, version: int, against: int) -> None:
    session.execute(session.prepare(
        "DELETE FROM batch_version_deltas WHERE day = ? AND version = ? AND against_version = ?"),
        (day, version, against))
