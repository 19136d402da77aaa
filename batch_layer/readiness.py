"""Whether day D's batch can run yet: the nightly DAG's sensor asks this every minute.

Ready means the day is over (now is past the cutoff) and the archive proves complete for
the day's arrival window, by the same check ``viewcount batch`` makes before it starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from settings.environment import Settings

from counting.window import DEFAULT_GRACE, BatchWindow


@dataclass(frozen=True)
class Readiness:
    """What stands between day D and its batch: ``waiting`` lines that time or the
    archiver can close (the day not over, the archiver behind, an open transaction), and
    ``lasting`` gaps that no wait closes (offsets the archiver committed past but never
    filed). Ready when both are empty."""

    waiting: tuple[str, ...] = ()
    lasting: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return not self.waiting and not self.lasting


def archive_readiness(day: dt.date, settings: Settings, grace: dt.timedelta = DEFAULT_GRACE,
                      now: dt.datetime | None = None) -> Readiness:
    """Whether day D's archive is complete, and if not, whether waiting can make it so."""
    from batch_layer.completeness import archive_completeness
    from storage.cassandra import connect

    window = BatchWindow(day, grace)
    now = now or dt.datetime.now(dt.timezone.utc)
    if not window.is_over(now):
        return Readiness(waiting=(f"day {day} is not over: its cutoff is {window.cutoff.isoformat()}",))
    session = connect(settings)
    try:
        completeness = archive_completeness(session, settings, window)
    finally:
        session.cluster.shutdown()
    return Readiness(tuple(completeness.pending), tuple(completeness.lasting))
