"""Helpers for the batch-layer tests: run the CLI, read a version back, compute the truth."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

from oracle import counts as oracle

MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def run_cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """The CLI's result whatever its exit status (tests.support.speed.viewcount asserts success)."""
    return subprocess.run([sys.executable, "-m", "viewcount.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def topic_records(settings) -> list[Record]:
    from tests.support.speed import consume

    return [Record(m.partition(), m.offset(), m.value(), m.timestamp()[1])
            for m in consume(settings, settings.views_topic)]


def expected_views(records: list[Record], day: dt.date, cutoff_ms: int) -> dict[tuple[str, int], int]:
    return oracle.day_views(((r.value, r.timestamp_ms) for r in records), day_start_ms(day), cutoff_ms)


def expected_top(views: dict[tuple[str, int], int], limit: int = 1000) -> list[tuple[int, str, int]]:
    totals = Counter()
    for (video_id, _), count in views.items():
        totals[video_id] += count
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [(rank, video_id, views) for rank, (video_id, views) in enumerate(ranked, start=1)]


def expected_stats(records: list[Record], day: dt.date, cutoff_ms: int) -> dict:
    """What the batch must report about the arrivals of its window, by the oracle's rules."""
    start_ms, end_ms = day_start_ms(day) - 300_000, day_start_ms(day) + 86_400_000
    invalid, valid_in_day, other_days, read, past_cutoff = Counter(), 0, 0, 0, 0
    for record in records:
        if cutoff_ms <= record.timestamp_ms < cutoff_ms + 3_600_000:  # the hour after the cutoff
            reason, event = oracle.classify(record.value, record.timestamp_ms)
            past_cutoff += not reason and day_start_ms(day) <= event.minute_ms < end_ms
        if not start_ms <= record.timestamp_ms < cutoff_ms:
            continue
        read += 1
        reason, event = oracle.classify(record.value, record.timestamp_ms)
        if reason:
            invalid[reason] += 1
        elif day_start_ms(day) <= event.minute_ms < end_ms:
            valid_in_day += 1
        else:
            other_days += 1
    views = expected_views(records, day, cutoff_ms)
    return {"events_read": read, "invalid": {k: v for k, v in invalid.items() if v}, "other_days": other_days,
            "past_cutoff": past_cutoff,
            "duplicates_removed": valid_in_day - sum(views.values()), "cells": len(views),
            "total_views": sum(views.values()), "videos": len({video for video, _ in views})}


def version_cells(session, day: dt.date, version: int) -> dict[tuple[str, int], int]:
    """Every batch_minute_views row of one version (the test keyspace holds only this test's)."""
    from storage.batch_results import read_version_cells

    return {(video_id, _ms(minute)): views for (video_id, minute), views in read_version_cells(session, day, version).items()}


def version_top(session, day: dt.date, version: int) -> list[tuple[int, str, int]]:
    from storage.batch_results import read_top_videos

    return read_top_videos(session, day, version)


def version_row(session, day: dt.date, version: int):
    from storage.batch_results import read_version_row

    return read_version_row(session, day, version)


def parquet_cells(settings, uri: str) -> dict[tuple[str, int], int]:
    """The minute counts a version wrote as Parquet (s3a://bucket/prefix)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from storage.s3 import client, split_uri

    bucket, prefix = split_uri(uri)
    s3 = client(settings)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
            if item["Key"].endswith(".parquet")]
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) for key in keys]
    table = pa.concat_tables(tables)
    minutes = table["minute"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
    return dict(zip(zip(table["video_id"].to_pylist(), minutes), table["views"].to_pylist()))


def delete_archive_batch_hour(settings, day: dt.date, hour: int, batch_id: int) -> list:
    """Delete one archiver batch's files and rows of one arrival hour; returns the rows."""
    from storage.archive import archive_path, delete_hour, read_hours
    from storage.cassandra import connect
    from storage.s3 import client, split_uri

    session = connect(settings)
    try:
        rows = [row for row in read_hours(session, settings.views_topic, [day])
                if (row.arrival_hour, row.batch_id) == (hour, batch_id)]
        for row in rows:
            delete_hour(session, settings.views_topic, row)
    finally:
        session.cluster.shutdown()
    bucket, root = split_uri(archive_path(settings))
    prefix = f"{root}/arrival_date={day}/arrival_hour={hour}/batch_id={batch_id}/"
    s3 = client(settings)
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    return rows


def delete_prefix(settings, uri: str) -> None:
    """Remove every object under an s3a:// prefix of the settings' bucket (what a test wrote)."""
    from storage import s3

    bucket, prefix = s3.split_uri(uri)
    assert bucket == settings.s3_bucket, uri
    s3.delete_prefix(settings, prefix.rstrip("/") + "/")


def _ms(minute: dt.datetime) -> int:
    return int(minute.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
