"""Promotion overrides on ``/metrics``: how many promotions of the last ``DAYS`` days (and
today) the exact gate did not clear, per kind ('unreconciled': no passing reconciliation;
'loosened': passed with billable tolerances looser than exact), read from
``unreconciled_promotions`` (``storage.batch_results.promote``) at most every ``REFRESH_S``
when ``/metrics`` is scraped, for the alert in ``infra/prometheus``. A failed read never
fails ``/metrics``: the last counts read stay, and ``viewcount_promotion_override_read_ok``
says 0.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

from storage.batch_results import LOOSENED, UNRECONCILED
from storage.serving_reads import OVERRIDES_OF_DAYS

REFRESH_S = 5.0
DAYS = 7  # days of data before today whose promotions are counted: a week of nightly runs and restatements
KINDS = (UNRECONCILED, LOOSENED)


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class OverrideWatch:
    """The counts per kind as last read (None until a read succeeded), whether the latest
    read succeeded (None before the first); ``today`` says which days are recent."""

    def __init__(self, store, refresh_s: float = REFRESH_S, today=_utc_today) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.today = today
        self.counts: dict[str, int] | None = None
        self.read_ok: bool | None = None
        self._tried_at = -float("inf")

    async def refresh(self) -> None:
        """Read again when the last try is ``refresh_s`` old (a failed one too)."""
        if time.monotonic() - self._tried_at < self.refresh_s:
            return
        self._tried_at = time.monotonic()
        try:
            self.counts = await self._read()
        except Exception:  # noqa: BLE001 - any failure of this read: /metrics still answers, and says so
            self.read_ok = False
            return
        self.read_ok = True

    async def _read(self) -> dict[str, int]:
        today = self.today()
        days = [today - dt.timedelta(days=back) for back in range(DAYS + 1)]
        rows = await self.store.optional_rows(OVERRIDES_OF_DAYS, (days,))
        kinds = Counter(kind or UNRECONCILED for (kind,) in rows or ())  # a row before migration 0013: unreconciled
        return {kind: kinds.get(kind, 0) for kind in KINDS}
