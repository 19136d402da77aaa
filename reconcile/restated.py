"""What a reconciliation shows of restatements (``storage.restatements``).

- The day's restatement records and its open request: ``viewcount reconcile`` prints them
  (``printed_fields``) beside the summary, and the report lists the records. They are not
  in the stored summary: it is written before the day is promoted, so a list in it would
  go stale with the next promotion (read the records themselves instead).
- When the reconciled batch version was computed against a promoted version of the day
  (``batch_versions.delta_against``), what promoting it restates: the per-video deltas the
  batch stored, and their money per currency at the catalog's rates, exact (never summed
  across currencies), the way ``reconcile.billing`` prices a cell: delta x rate / 1000 for
  billable videos; a video missing from the catalog gets no money (it is not guessed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from storage.restatements import OPEN_STATUSES, Request, Restatement, VideoDelta, priced

if TYPE_CHECKING:
    from cassandra.cluster import Session


@dataclass(frozen=True)
class RestatedVersion:
    """What promoting a batch version would change in the version it was computed against:
    every video whose total differs, largest |delta| first, with its money when billable."""

    version: int
    against: int
    videos: tuple[VideoDelta, ...]
    money_delta: dict[str, Decimal]  # currency -> exact signed amount
    videos_not_in_catalog: int = 0

    @property
    def views_delta(self) -> int:
        return sum(video.delta for video in self.videos)


def against_version(session: "Session", day: dt.date, version: int) -> tuple[int, list[VideoDelta]] | None:
    """The promoted version ``version`` was computed against and its stored deltas; None
    when it was computed against none. The candidates are the day's promoted versions,
    newest promotion first: a batch compares itself with the version served when it ran."""
    from storage.batch_results import read_promotion_history
    from storage.restatements import read_version_deltas

    tried = {version}
    for promotion in read_promotion_history(session, day):
        for candidate in (promotion.version, promotion.previous_version):
            if candidate is None or candidate in tried:
                continue
            tried.add(candidate)
            deltas = read_version_deltas(session, day, version, candidate)
            if deltas is not None:
                return candidate, deltas
    return None


def restated_version(session: "Session", day: dt.date, version: int) -> RestatedVersion | None:
    from storage.catalog import read_entries

    found = against_version(session, day, version)
    if found is None:
        return None
    against, deltas = found
    catalog = read_entries(session, [video.video_id for video in deltas])
    videos, money = priced(deltas, catalog)
    missing = sum(1 for video in deltas if video.video_id not in catalog)
    return RestatedVersion(version, against, tuple(videos), money, missing)


@dataclass(frozen=True)
class DayRestatements:
    """The day's restatement records (newest first) and its open request, if any."""

    records: tuple[Restatement, ...] = ()
    open_request: Request | None = None

    def printed_fields(self) -> dict:
        """What ``viewcount reconcile`` prints beside the summary (JSON and text alike)."""
        return {"restatements": [record.as_dict() for record in self.records],
                "restatement_request": request_dict(self.open_request) if self.open_request else None}


PRINTED_ONLY = ("restatements", "restatement_request")  # printed, never in the stored summary


def request_dict(request: Request) -> dict:
    def when(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {"day": request.day.isoformat(), "status": request.status, "detected_at": when(request.detected_at),
            "updated_at": when(request.updated_at), "served_version": request.served_version,
            "reason": request.reason, "detail": request.detail}


def read_day(session: "Session", topic: str, day: dt.date) -> DayRestatements:
    from storage.restatements import read_request, read_restatements

    request = read_request(session, topic, day)
    return DayRestatements(tuple(read_restatements(session, day)),
                           request if request is not None and request.status in OPEN_STATUSES else None)
