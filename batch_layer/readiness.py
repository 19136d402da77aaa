"""Whether day D's batch can run yet: the nightly DAG's sensor asks this every minute.

Ready means the day is over (now is past the cutoff) and the archive proves complete for
the day's arrival window, by the same check ``viewcount batch`` makes before it starts.
"""

from __future__ import annotations

import datetime as dt

from storage.settings import Settings

from counting.window import DEFAULT_GRACE, BatchWindow


def archive_gaps(day: dt.date, grace: dt.timedelta = DEFAULT_GRACE, settings: Settings | None = None,
                 now: dt.datetime | None = None) -> list[str]:
    """What still stands between day D and its batch, as readable lines; empty when ready."""
    from batch_layer.completeness import archive_completeness
    from storage.cassandra import connect

    settings = settings or Settings.from_env()
    window = BatchWindow(day, grace)
    now = now or dt.datetime.now(dt.timezone.utc)
    if not window.is_over(now):
        return [f"day {day} is not over: its cutoff is {window.cutoff.isoformat()}"]
    session = connect(settings)
    try:
        return archive_completeness(session, settings, window).gaps
    finally:
        session.cluster.shutdown()
