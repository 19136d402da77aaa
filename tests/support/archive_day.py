"""Day D's archive rows: records around one day (early, duplicate, bad, late, past the
cutoff) shared by the recompute, the evidence and the quality tests."""

from __future__ import annotations

import datetime as dt

from tests.support.counting import view

D = dt.date(2026, 11, 25)
UTC = dt.timezone.utc


def at(day_offset: int, hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 25, hour, minute, second, tzinfo=UTC) + dt.timedelta(days=day_offset)


# (partition, offset, Kafka timestamp, value)
RECORDS = [
    (0, 0, at(-1, 23, 50), view("e0", "v3", "2026-11-25T00:00:30Z")),  # arrived before the window
    (0, 1, at(-1, 23, 57), view("e0", "v3", "2026-11-25T00:01:00Z")),  # 4 min ahead of arrival: counts
    (0, 2, at(-1, 23, 58), view("e5", "v3", "2026-11-24T23:57:00Z")),  # the day before
    (1, 0, at(0, 10, 0), view("e1", "v1", "2026-11-25T10:00:05Z")),
    (1, 1, at(0, 10, 0, 1), view("e1", "v1", "2026-11-25T10:00:05Z")),  # re-sent: one view
    (1, 2, at(0, 10, 0, 2), b'{"event_id": "e6"'),  # bad_json
    (1, 3, at(1, 0, 30), view("e4", "v1", "2026-11-25T23:59:30Z")),  # late, within grace: counts
    (1, 4, at(1, 0, 40), view("e7", "v1", "2026-11-26T00:39:00Z")),  # the day after
    (1, 5, at(1, 1, 0), view("e9", "v1", "2026-11-25T23:59:40Z")),  # at the cutoff: not counted
    (1, 6, at(0, 12, 0), view("e2", "v2", "2026-11-25T12:00:00Z")),
    (1, 7, at(0, 12, 0, 1), view("e3", "v2", "2026-11-25T12:00:59.999Z")),
]


def archive_rows(spark, records=RECORDS):
    from storage.archive import archive_schema

    return spark.createDataFrame([("views", p, o, ts, b"k", value) for p, o, ts, value in records], archive_schema())
