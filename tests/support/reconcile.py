"""Helpers for the reconcile tests: faults injected into a real day, and their truth."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from decimal import Decimal

from oracle import counts as oracle
from producer.catalog import video_ids
from tests.support.batch import day_start_ms

MS_PER_MINUTE = 60_000


def run_together(env: dict[str, str], *commands: tuple[str, ...], timeout: float = 900) -> None:
    """Run CLI commands at the same time; each must succeed."""
    running = [subprocess.Popen([sys.executable, "-m", "viewcount.cli", *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for args in commands]
    for args, process in zip(commands, running):
        _, stderr = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"viewcount {' '.join(args)}: {stderr[-3000:]}"


def catalog_rows(videos: int) -> list[tuple[str, bool, Decimal]]:
    """The generator's catalog with billing terms: every fourth video is not billable."""
    return [(video, rank % 4 != 3, Decimal(1 + rank % 3) / 2) for rank, video in enumerate(video_ids(videos))]


def currency_of(rank: int) -> str:
    return "EUR" if rank % 5 == 4 else "USD"  # two currencies: money is summed per currency


def write_catalog_csv(path, videos: int) -> dict[str, tuple[bool, Decimal, str]]:
    """A catalog CSV of the generator's videos; returns video -> (billable, rate, currency)."""
    rows = [(video, billable, rate, currency_of(rank))
            for rank, (video, billable, rate) in enumerate(catalog_rows(videos))]
    lines = ["video_id,billable,rate_per_1000,currency,title"]
    lines += [f"{video},{str(billable).lower()},{rate},{currency},Video {video}" for video, billable, rate, currency in rows]
    path.write_text("\n".join(lines) + "\n")
    return {video: (billable, rate, currency) for video, billable, rate, currency in rows}


def view(video: str, event_time_ms: int) -> bytes:
    event_time = dt.datetime.fromtimestamp(event_time_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps({"event_id": uuid.uuid4().hex, "video_id": video, "event_time": event_time}).encode()


def send(settings, partition: int, records: list[tuple[str, bytes, int]]) -> None:
    """(key, value, Kafka timestamp ms) records, in order, to one partition of the views topic."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    for key, value, timestamp_ms in records:
        producer.produce(settings.views_topic, value=value, key=key.encode(), partition=partition,
                         timestamp=timestamp_ms)
    assert producer.flush(30) == 0


def remove_archive_file(settings, day: dt.date, hour: int) -> set[tuple[int, int]]:
    """Delete the first archive file of one arrival hour (its archive_hours rows stay);
    returns the (partition, offset) of the records it held."""
    import pyarrow.parquet as pq

    from storage.archive import archive_path
    from storage.s3 import client, split_uri

    bucket, root = split_uri(archive_path(settings))
    s3 = client(settings)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{root}/arrival_date={day}/arrival_hour={hour}/")
    key = sorted(item["Key"] for item in listed["Contents"] if item["Key"].endswith(".parquet"))[0]
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    s3.delete_object(Bucket=bucket, Key=key)
    return set(zip(table["partition"].to_pylist(), table["offset"].to_pylist()))


def occurrences_by_cell(messages, day: dt.date, cutoff_ms: int) -> dict[tuple[str, int], list]:
    """(partition, offset, event_id) of every countable record of the day, per cell."""
    start, end = day_start_ms(day), day_start_ms(day) + 86_400_000
    cells = defaultdict(list)
    for message in messages:
        timestamp = message.timestamp()[1]
        if not start - 300_000 <= timestamp < cutoff_ms:
            continue
        _, event = oracle.classify(message.value(), timestamp)
        if event is not None and start <= event.minute_ms < end:
            cells[(event.video_id, event.minute_ms)].append((message.partition(), message.offset(), event.event_id))
    return cells


def distinct_counts(cells: dict, removed: set = frozenset()) -> dict[tuple[str, int], int]:
    counts = {cell: len({event_id for p, o, event_id in found if (p, o) not in removed})
              for cell, found in cells.items()}
    return {cell: count for cell, count in counts.items() if count}


def repeated_cells(cells: dict) -> list[tuple[str, int]]:
    """Cells with an event_id that occurs more than once, most repeats first."""
    repeats = {cell: len(found) - len({event_id for _, _, event_id in found}) for cell, found in cells.items()}
    return sorted((cell for cell, count in repeats.items() if count), key=lambda cell: (-repeats[cell], cell))


def speed_rows(settings, day: dt.date) -> dict[tuple[str, int], int]:
    from storage.cassandra import connect
    from storage.minute_counts import read_every_minute_count

    session = connect(settings)
    try:
        return {(cell.video_id, int(cell.minute.timestamp() * 1000)): cell.views
                for cell in read_every_minute_count(session) if cell.day == day}
    finally:
        session.cluster.shutdown()


def rewrite_speed_cells(settings, day: dt.date, deleted: list, written: dict) -> None:
    """Delete some speed cells and overwrite others, as a lost write or a bad replay would."""
    from storage.cassandra import connect
    from storage.minute_counts import MinuteCount, delete_minute_count, upsert_minute_counts

    session = connect(settings)
    try:
        for video, minute_ms in deleted:
            delete_minute_count(session, video, dt.datetime.fromtimestamp(minute_ms / 1000, dt.timezone.utc))
        upsert_minute_counts(session, [MinuteCount(video, dt.datetime.fromtimestamp(minute_ms / 1000, dt.timezone.utc),
                                                   views) for (video, minute_ms), views in written.items()])
    finally:
        session.cluster.shutdown()


def divergences_by_cell(summary: dict) -> dict[tuple[str, int], tuple]:
    found = {}
    for d in summary["divergences"]:
        minute = dt.datetime.strptime(d["minute"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        found[(d["video_id"], int(minute.timestamp() * 1000))] = (d["speed"], d["batch"], d["cause"], d["billable"])
    return found


def late_cells_of(late: Counter, day: dt.date) -> set:
    start = day_start_ms(day)
    return {cell for cell, count in late.items() if count and start <= cell[1] < start + 86_400_000}
