"""Restatements on ``/metrics``: the views topic's restatement requests per status, and the
restatement records of those requests' days (``storage.restatements``), read from
Cassandra at most every ``REFRESH_S`` when ``/metrics`` is scraped, for the alerts in
``infra/prometheus``. A failed read never fails ``/metrics``: the last counts read stay,
and ``viewcount_restatement_read_ok`` says 0.
"""

from __future__ import annotations

import time
from collections import Counter

from storage.restatements import FAILED, PENDING, RESTATED, Counts
from storage.serving_reads import RESTATEMENT_REQUESTS, RESTATEMENTS_OF_DAYS

from serving.store import _date

REFRESH_S = 5.0
STATUSES = (PENDING, FAILED, RESTATED)


class RestatementWatch:
    """The counts as last read (None until a read succeeded), whether the latest read
    succeeded (None before the first), and when the last good one was sent (Unix time)."""

    def __init__(self, store, refresh_s: float = REFRESH_S) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.counts: Counts | None = None
        self.read_ok: bool | None = None
        self.read_at: float | None = None
        self._tried_at = -float("inf")

    async def refresh(self) -> None:
        """Read again when the last try is ``refresh_s`` old (a failed one too: a Cassandra
        that does not answer is asked again only then)."""
        if time.monotonic() - self._tried_at < self.refresh_s:
            return
        self._tried_at, sent_at = time.monotonic(), time.time()
        try:
            self.counts = await self._read()
        except Exception:  # noqa: BLE001 - any failure of this read: /metrics still answers, and says so
            self.read_ok = False
            return
        self.read_ok, self.read_at = True, sent_at

    async def _read(self) -> Counts:
        rows = await self.store.optional_rows(RESTATEMENT_REQUESTS, (self.store.settings.views_topic,))
        if rows is None:  # a schema older than migration 0012: nothing was ever requested
            return Counts(dict.fromkeys(STATUSES, 0), 0)
        statuses = Counter(status for _, status in rows)
        days = sorted({_date(day) for day, _ in rows})
        records = await self.store.optional_rows(RESTATEMENTS_OF_DAYS, (days,)) if days else []
        return Counts({status: statuses.get(status, 0) for status in STATUSES}, len(records or ()))
