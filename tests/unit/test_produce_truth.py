"""The oracle files: counts.parquet agrees with the records, summary.json with the labels."""

from __future__ import annotations

import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from counting.reasons import REASONS
from oracle import counts as oracle
from producer.arrivals import DayArrivals
from producer.generator import Mix, ViewGenerator
from producer.truth import GroundTruth, write_oracle


def test_written_oracle_matches_the_records(tmp_path):
    mix = Mix(duplicates=0.05, late=0.2, malformed=0.05)
    generator = ViewGenerator(mix, 5, DayArrivals(date(2026, 11, 24), 20_000, 5))
    truth, records = GroundTruth(generator.video_ids), []
    while chunk := generator.chunk(3_000):
        truth.add(chunk)
        records.extend(chunk)
    (tmp_path / "latest").mkdir()
    (tmp_path / "latest" / "stale.txt").write_text("from an older run")

    summary = write_oracle(tmp_path / "latest", truth, {"seed": 5})

    assert sorted(p.name for p in (tmp_path / "latest").iterdir()) == ["counts.parquet", "summary.json"]
    counts = pq.read_table(tmp_path / "latest" / "counts.parquet")
    assert counts.schema.types == [pa.string(), pa.timestamp("us", tz="UTC"), pa.int64()]
    assert counts.column_names == ["video_id", "minute", "views"]
    counter = oracle.ViewCounter().add_all((r.value, r.timestamp_ms) for r in records)
    assert oracle.read_counts(tmp_path / "latest" / "counts.parquet") == counter.views()

    assert json.loads((tmp_path / "latest" / "summary.json").read_text()) == summary
    assert summary["records_sent"] == 20_000 and summary["seed"] == 5
    assert summary["invalid"] == {reason: counter.invalid[reason] for reason in REASONS}
    assert summary["valid_records"] == counter.valid_records
    assert summary["valid_records"] == summary["distinct_events"] + summary["duplicates"]
    assert summary["views"] == sum(counter.views().values()) == summary["distinct_events"]
    assert summary["cells"] == counts.num_rows
    assert {"2026-11-23", "2026-11-24"} <= set(summary["event_days"])
    # the previous day's views are late ones, plus a few sent just after midnight
    assert 0 < summary["late"]["event_day_before_arrival_day"] <= summary["event_days"]["2026-11-23"]["views"]
    assert summary["arrival_days"] == {"2026-11-24": 20_000}
    assert summary["key_bytes"] == sum(len(r.key or b"") for r in records)
    assert summary["value_bytes"] == sum(len(r.value or b"") for r in records)
