"""What the generator knows to be true, tallied as records go out, and written as the oracle.

Counts come from the generator's own labels (a valid original is one view; a re-send and a
malformed record are none), never from re-parsing the bytes, so that the Spark layers and
``oracle.counts`` can both be checked against them. Memory is 12 bytes per valid view
(video index, minute) until ``counts_table`` aggregates them: ~120 MB for 10 million.
"""

from __future__ import annotations

import json
import os
import shutil
from array import array
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from counting.reasons import REASONS
from counting.durations import DEFAULT_WATERMARK_DELAY
from producer.generator import DUPLICATE, VALID, Record

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
WATERMARK_MS = DEFAULT_WATERMARK_DELAY // timedelta(milliseconds=1)  # the speed layer's default lateness allowance
COUNTS_FILE = "counts.parquet"
SUMMARY_FILE = "summary.json"


def _day_text(epoch_day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=epoch_day)).isoformat()


class GroundTruth:
    def __init__(self, video_ids: list[str]) -> None:
        self._video_ids = video_ids
        self._videos = array("i")
        self._minutes = array("q")
        self.records = 0
        self.duplicates = 0
        self.invalid: Counter[str] = Counter({reason: 0 for reason in REASONS})
        self.late = Counter(events=0, delay_over_10_minutes=0, event_day_before_arrival_day=0)
        self.arrival_days: Counter[int] = Counter()
        self.first_timestamp_ms: int | None = None
        self.last_timestamp_ms: int | None = None
        self.key_bytes = 0
        self.value_bytes = 0

    def add(self, records: list[Record]) -> None:
        if not records:
            return
        videos, minutes, late = self._videos, self._minutes, self.late
        key_bytes = value_bytes = 0
        for record in records:
            key_bytes += len(record.key or b"")
            value_bytes += len(record.value or b"")
            label = record.label
            if label == VALID:
                videos.append(record.video)
                minutes.append(record.event_time_ms // MS_PER_MINUTE)
                if record.late:
                    late["events"] += 1
                    late["delay_over_10_minutes"] += record.timestamp_ms - record.event_time_ms > WATERMARK_MS
                    late["event_day_before_arrival_day"] += (
                        record.event_time_ms // MS_PER_DAY < record.timestamp_ms // MS_PER_DAY)
            elif label == DUPLICATE:
                self.duplicates += 1
            else:
                self.invalid[label] += 1
        first_day, last_day = records[0].timestamp_ms // MS_PER_DAY, records[-1].timestamp_ms // MS_PER_DAY
        if first_day == last_day:
            self.arrival_days[first_day] += len(records)
        else:
            self.arrival_days.update(record.timestamp_ms // MS_PER_DAY for record in records)
        self.key_bytes += key_bytes
        self.value_bytes += value_bytes
        self.records += len(records)
        if self.first_timestamp_ms is None:
            self.first_timestamp_ms = records[0].timestamp_ms
        self.last_timestamp_ms = records[-1].timestamp_ms

    @property
    def distinct_events(self) -> int:
        return len(self._videos)

    def counts_table(self):
        """views per (video_id, UTC minute) as an Arrow table sorted by video_id, minute."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        events = pa.table({
            "video": pa.array(np.frombuffer(self._videos, dtype=np.int32)),
            "minute": pa.array(np.frombuffer(self._minutes, dtype=np.int64)),
        })
        cells = events.group_by(["video", "minute"]).aggregate([([], "count_all")])
        minutes_us = pc.multiply(cells["minute"], 60_000_000)
        table = pa.table({
            "video_id": pa.array(self._video_ids, pa.string()).take(cells["video"]),
            "minute": minutes_us.cast(pa.timestamp("us", tz="UTC")),
            "views": cells["count_all"].cast(pa.int64()),
        })
        return table.sort_by([("video_id", "ascending"), ("minute", "ascending")])

    def summary(self, counts) -> dict:
        """The oracle's summary.json body (run metadata is added by the caller)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        days = pc.cast(pc.divide(pc.cast(counts["minute"], pa.int64()), 86_400_000_000), pa.int64())
        per_day = pa.table({"day": days, "views": counts["views"]}).group_by("day").aggregate(
            [("views", "sum"), ([], "count_all")]).sort_by("day")
        invalid_total = sum(self.invalid.values())
        return {
            "records_sent": self.records,
            "valid_records": self.records - invalid_total,
            "distinct_events": self.distinct_events,
            "duplicates": self.duplicates,
            "invalid_records": invalid_total,
            "invalid": dict(self.invalid),
            "late": dict(self.late),
            "views": self.distinct_events,
            "cells": counts.num_rows,
            "event_days": {
                _day_text(day): {"views": views, "cells": cells}
                for day, views, cells in zip(per_day["day"].to_pylist(), per_day["views_sum"].to_pylist(),
                                             per_day["count_all"].to_pylist())
            },
            "arrival_days": {_day_text(day): n for day, n in sorted(self.arrival_days.items())},
            "key_bytes": self.key_bytes,
            "value_bytes": self.value_bytes,
            "first_timestamp_ms": self.first_timestamp_ms,
            "last_timestamp_ms": self.last_timestamp_ms,
        }


def write_oracle(directory: Path, truth: GroundTruth, run: dict) -> dict:
    """Write counts.parquet and summary.json to ``directory``, replacing it whole."""
    import pyarrow.parquet as pq

    counts = truth.counts_table()
    summary = {**truth.summary(counts), **run}
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.with_name(f".{directory.name}.new-{os.getpid()}")
    retired = directory.with_name(f".{directory.name}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    pq.write_table(counts, staging / COUNTS_FILE)
    (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired, ignore_errors=True)
    return summary
