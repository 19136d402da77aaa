"""A counter started with a new checkpoint against a topic earlier counters counted (a
lost checkpoint), against the real Kafka and Cassandra: refused unless told to rebuild, and
a rebuild never replaces a cell with a partial count.

One scenario, run once: count a day; zero every cell and rebuild while Kafka holds every
record (all cells come back); delete the first half of every partition, as retention
would; start a new checkpoint without and then with ``--rebuild``, after fresh views whose
minutes straddle that rebuild's write floor (it writes the minutes from the floor on and
keeps the others); rebuild from the latest offsets; restart the first rebuild; restart the
rebuild from the latest offsets after fresh views straddling its floor.

A second scenario: one partition holds a 30-minute burst, and a rebuild asked to read in
small batches (Spark splits the bound over the partitions by backlog, so the burst
partition falls behind the others' watermark) would drop the burst as late and lower the
cells it had counted.

Fresh views straddling a floor can only be sent once the floor (some 10.5 minutes after
the rebuild's batch) is within reach of the latest event time Kafka and the rule accept:
some 1.5 minutes after the rebuild. The runs that need no fresh views run in those minutes:
the refused start and the second scenario in the first wait, the first rebuild's restart
and its refused second rebuild in the second (neither reads a record: none was sent
since the partial rebuild).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager

import pytest

from tests.support.speed import consume, isolated, logged_batches, viewcount
from oracle import counts as oracle

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 21)


def _speed(env, folder, checkpoint: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewcount.cli", "speed", "--available-now", "--metrics-port", "0",
                           "--checkpoint", str(folder / checkpoint), *extra],
                          env=env, capture_output=True, text=True, timeout=600)


def _cells(session) -> dict:
    from storage.minute_counts import read_every_minute_count

    return {(cell.video_id, cell.minute.replace(tzinfo=None)): cell.views for cell in read_every_minute_count(session)}


def _zero(session, cells) -> None:
    """Every one of ``cells`` ({(video, minute): views}) set to 0, as a bad write would."""
    from storage.minute_counts import MinuteCount, upsert_minute_counts

    upsert_minute_counts(session, [MinuteCount(video_id, minute, 0) for video_id, minute in cells])


def _registered(session, folder, checkpoint: str):
    from storage.speed_queries import every_registered_query

    rows = [query for _, query in every_registered_query(session)
            if query.checkpoint == str(folder / checkpoint / "counts")]
    assert len(rows) == 1, rows
    return rows[0]


def _half_of_every_partition_expires(settings) -> dict[int, int]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    from storage.topics import partition_offsets

    cut = {partition: (low + high) // 2 for partition, (low, high) in partition_offsets(settings, settings.views_topic).items()}
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.delete_records([TopicPartition(settings.views_topic, p, o) for p, o in cut.items()]).values():
        future.result()
    return cut


def _view(video: str, event_time_ms: int) -> bytes:
    event_time = dt.datetime.fromtimestamp(event_time_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps({"event_id": uuid.uuid4().hex, "video_id": video, "event_time": event_time}).encode()


def _send(settings, records: list[tuple[int | None, str, bytes, int]]) -> None:
    """(partition or None for the key's, key, value, Kafka timestamp ms) records, in order."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    for partition, key, value, timestamp_ms in records:
        extra = {} if partition is None else {"partition": partition}
        producer.produce(settings.views_topic, value=value, key=key.encode(), timestamp=timestamp_ms, **extra)
    assert producer.flush(30) == 0


def _minute_cells(views: dict) -> dict:
    """The oracle's {(video, minute ms): views} as the speed table's keys."""
    return {(video, dt.datetime.fromtimestamp(minute_ms / 1000, dt.timezone.utc).replace(tzinfo=None)): count
            for (video, minute_ms), count in views.items()}


# Fresh views reach this far ahead of the clock: their CreateTime is at most 4 min 35 s
# ahead (the broker takes 5 minutes; 25 s for the send) and their event time 4 min 40 s
# after it (the rule takes 5 minutes; set here, so no clock is involved).
AHEAD_OF_CREATE_TIME_MS = 280_000
FRESH_AHEAD_MS = 275_000 + AHEAD_OF_CREATE_TIME_MS


def _fresh_views_around(settings, floor: dt.datetime, prefix: str) -> dict:
    """Views of three new videos, one every 5 s of event time from 4 minutes ago to 9 min
    15 s ahead (the furthest the broker's 5 minutes of CreateTime and the rule's 5 of
    event time allow, with a margin), sent once that span reaches 30 s past ``floor``: so
    some of their minutes lie before the floor and some from it on. Returns the oracle's
    cells. (The floor lies some 10.5 minutes after a rebuild's batch: the furthest reach
    ahead is the shortest wait.)"""
    send_at = floor + dt.timedelta(seconds=30) - dt.timedelta(milliseconds=FRESH_AHEAD_MS)
    time.sleep(max((send_at - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0))
    now_ms = int(time.time() * 1000)
    records = []
    for step, event_ms in enumerate(range(now_ms - 240_000, now_ms + FRESH_AHEAD_MS + 1, 5_000)):
        video = f"{prefix}-{step % 3}"
        timestamp_ms = event_ms if event_ms <= now_ms else max(now_ms, event_ms - AHEAD_OF_CREATE_TIME_MS)
        records.append((None, video, _view(video, event_ms), timestamp_ms))
    _send(settings, records)
    return _minute_cells(oracle.views((value, timestamp) for _, _, value, timestamp in records))


def _expected_floor(settings, folder, checkpoint: str) -> dt.datetime:
    """The write floor of a rebuild after records the checkpoint's query read expired: the
    first minute after what the last batch of it that read anything can count."""
    from speed_layer.rebuild import floor_after

    read = [batch.batch_time for batch in logged_batches(settings, folder / checkpoint / "counts")
            if any(batch.end_offsets.get(p, start) > start for p, start in batch.start_offsets.items())]
    return floor_after(max(read).replace(tzinfo=dt.timezone.utc))


def _published_by(settings, folder, checkpoint: str) -> dict:
    """The cells the batches of a checkpoint's query published to the cell feed, as the
    speed table's keys (each batch publishes with its own write timestamp)."""
    from storage.cell_feed import decode

    stamps = {batch.write_timestamp for batch in logged_batches(settings, folder / checkpoint / "counts")}
    cells = [decode(message.key(), message.value()) for message in consume(settings, settings.cells_topic)]
    return {(cell.video_id, cell.minute.replace(tzinfo=None)): cell.views
            for cell in cells if cell.write_timestamp in stamps}


def _split_at(cells: dict, floor: dt.datetime) -> tuple[dict, dict]:
    floor = floor.replace(tzinfo=None)
    return ({cell: views for cell, views in cells.items() if cell[1] < floor},
            {cell: views for cell, views in cells.items() if cell[1] >= floor})


@pytest.fixture(scope="module")
def scenario(stack, tmp_path_factory):
    from storage.cassandra import connect

    folder = tmp_path_factory.mktemp("rebuild")
    with isolated(stack, "test-rebuild") as (settings, env), ExitStack() as while_waiting:
        session = connect(settings)
        try:
            viewcount(env, "produce", "--events", "20000", "--seed", "11", "--day", DAY.isoformat(), "--videos", "150",
                      "--duplicates", "0.05", "--malformed", "0.01", "--late", "0")
            viewcount(env, "speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "first"))
            counted = _cells(session)
            _zero(session, counted)
            zeroed = _cells(session)
            rebuild_started = dt.datetime.now(dt.timezone.utc)
            full_rebuild = _speed(env, folder, "rebuilt", "--rebuild")
            after_full_rebuild = _cells(session)
            cut = _half_of_every_partition_expires(settings)
            refused = _speed(env, folder, "third")
            after_refusal = _cells(session)
            burst = while_waiting.enter_context(_burst_scenario(stack, tmp_path_factory.mktemp("rebuild-burst")))
            fresh = _fresh_views_around(settings, _expected_floor(settings, folder, "rebuilt"), "fresh")
            started = dt.datetime.now(dt.timezone.utc)
            partial_rebuild = _speed(env, folder, "third", "--rebuild")
            after_partial_rebuild = _cells(session)
            latest = _speed(env, folder, "latest", "--rebuild", "--starting-offsets", "latest")
            latest_floor = _registered(session, folder, "latest").write_floor.replace(tzinfo=dt.timezone.utc)
            restarted = _speed(env, folder, "third")
            after_restart = _cells(session)
            rebuild_again = _speed(env, folder, "third", "--rebuild")
            fresh_after_latest = _fresh_views_around(settings, latest_floor, "after-latest")
            latest_restarted = _speed(env, folder, "latest")
            yield {
                "settings": settings, "session": session, "folder": folder, "counted": counted, "zeroed": zeroed,
                "full_rebuild": full_rebuild, "after_full_rebuild": after_full_rebuild, "cut": cut,
                "refused": refused, "after_refusal": after_refusal, "rebuild_started": rebuild_started,
                "started": started,
                "partial_rebuild": partial_rebuild, "after_partial_rebuild": after_partial_rebuild,
                "restarted": restarted, "after_restart": after_restart, "rebuild_again": rebuild_again,
                "latest": latest, "fresh": fresh, "fresh_after_latest": fresh_after_latest,
                "latest_restarted": latest_restarted, "after_latest_restart": _cells(session), "burst": burst,
            }
        finally:
            session.cluster.shutdown()


def test_a_rebuild_while_kafka_holds_every_record_recounts_every_minute(scenario):
    assert len(scenario["counted"]) > 500 and set(scenario["zeroed"].values()) == {0}
    run = scenario["full_rebuild"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rebuilding the speed table from earliest offsets: writing every minute" in run.stderr
    assert scenario["after_full_rebuild"] == scenario["counted"]
    assert _registered(scenario["session"], scenario["folder"], "rebuilt").write_floor is None


def test_a_new_checkpoint_against_a_counted_topic_is_refused_in_one_line(scenario):
    run = scenario["refused"]
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("viewcount speed: error: the speed table already holds counts of topic")
    assert "--rebuild" in last
    # Counted from the second half of every partition alone, the cells would have dropped.
    assert scenario["after_refusal"] == scenario["counted"]


def test_a_rebuild_after_records_left_the_topic_keeps_every_minute_it_cannot_recount(scenario):
    run = scenario["partial_rebuild"]
    assert run.returncode == 0, run.stderr[-3000:]
    floor = _registered(scenario["session"], scenario["folder"], "third").write_floor.replace(tzinfo=dt.timezone.utc)
    # The last batch that read the expired records (the full rebuild's) was planned between
    # these two moments; no record it read counts after that plus the 10 minutes of allowances.
    assert scenario["rebuild_started"] + dt.timedelta(minutes=10) < floor
    assert floor <= scenario["started"] + dt.timedelta(minutes=11)
    assert f"writing minutes from {floor:%Y-%m-%d %H:%M} UTC on" in run.stderr
    before_floor, from_floor = _split_at(scenario["fresh"], floor)
    assert before_floor and from_floor, (floor, sorted(scenario["fresh"]))
    after = scenario["after_partial_rebuild"]
    # Written: every fresh minute from the floor on, counted whole.
    assert {cell: after.get(cell) for cell in from_floor} == from_floor
    # Kept: the day's cells, which the second halves of the partitions alone would lower,
    # and the fresh minutes before the floor, which no counter wrote.
    assert {cell: views for cell, views in after.items() if cell[0].startswith("fresh-")} == from_floor
    assert {cell: views for cell, views in after.items() if not cell[0].startswith("fresh-")} == scenario["counted"]
    # The cell feed got what the rebuild wrote, nothing below its floor.
    assert _published_by(scenario["settings"], scenario["folder"], "third") == from_floor


def test_a_rebuild_restarts_from_its_checkpoint_with_its_floor_and_is_not_started_twice(scenario):
    assert scenario["restarted"].returncode == 0, scenario["restarted"].stderr[-3000:]
    assert "rebuilding" not in scenario["restarted"].stderr
    assert scenario["after_restart"] == scenario["after_partial_rebuild"]
    again = scenario["rebuild_again"]
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "--rebuild starts a new checkpoint" in again.stderr.strip().splitlines()[-1]


def test_a_rebuild_from_the_latest_offsets_writes_only_minutes_after_its_start(scenario):
    run = scenario["latest"]
    assert run.returncode == 0, run.stderr[-3000:]
    floor = _registered(scenario["session"], scenario["folder"], "latest").write_floor.replace(tzinfo=dt.timezone.utc)
    assert scenario["started"] + dt.timedelta(minutes=10) < floor
    assert "rebuilding the speed table from latest offsets: writing minutes from" in run.stderr
    restarted = scenario["latest_restarted"]
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    before_floor, from_floor = _split_at(scenario["fresh_after_latest"], floor)
    assert before_floor and from_floor, (floor, sorted(scenario["fresh_after_latest"]))
    after = scenario["after_latest_restart"]
    # Its restart read the views sent after its start and wrote only their minutes from its
    # floor on; every other cell is as the partial rebuild left it.
    assert {cell: views for cell, views in after.items() if cell[0].startswith("after-latest-")} == from_floor
    assert {cell: views for cell, views in after.items()
            if not cell[0].startswith("after-latest-")} == scenario["after_partial_rebuild"]


BURST_VIDEOS = [f"burst-{index}" for index in range(8)]
BURST_START = dt.datetime.combine(DAY, dt.time(12), dt.timezone.utc)


def _day_with_a_burst_in_partition_0(seed: int = 27) -> list[tuple[int, str, bytes, int]]:
    """Six partitions of views spread over the day, each carrying a burst video in every
    minute of 12:00-12:30 too; partition 0 also holds a 30-minute burst of the burst
    videos (1,920 views, 86 % of its records). Each partition in event-time order."""
    rng = random.Random(seed)
    day_ms = int(dt.datetime.combine(DAY, dt.time(), dt.timezone.utc).timestamp() * 1000)
    burst_ms = int(BURST_START.timestamp() * 1000)
    records = []
    for partition in range(6):
        events = [(day_ms + rng.randrange(86_400_000), f"spread-{rng.randrange(40)}") for _ in range(300)]
        events += [(burst_ms + minute * 60_000 + rng.randrange(60_000), BURST_VIDEOS[partition])
                   for minute in range(30)]
        if partition == 0:
            events += [(burst_ms + rng.randrange(1_800_000), video) for video in BURST_VIDEOS for _ in range(240)]
        records += [(partition, video, _view(video, event_ms), event_ms) for event_ms, video in sorted(events)]
    return records


@contextmanager
def _burst_scenario(stack, folder):
    """The second scenario, in topics and a keyspace of its own, kept until the module ends."""
    from storage.cassandra import connect

    with isolated(stack, "test-rebuild-burst") as (settings, env):
        session = connect(settings)
        try:
            records = _day_with_a_burst_in_partition_0()
            _send(settings, records)
            first = _speed(env, folder, "first")
            counted = _cells(session)
            bounded = _speed(env, folder, "bounded", "--rebuild", "--max-offsets-per-trigger", "400")
            after_bounded = _cells(session)
            _zero(session, counted)
            whole = _speed(env, folder, "whole", "--rebuild")
            yield {
                "settings": settings, "folder": folder, "records": records, "first": first, "counted": counted,
                "bounded": bounded, "after_bounded": after_bounded, "whole": whole, "after_whole": _cells(session),
            }
        finally:
            session.cluster.shutdown()


@pytest.fixture(scope="module")
def burst(scenario):
    return scenario["burst"]  # run while the first scenario waits for its floor


def test_the_burst_day_is_counted_exactly_when_read_in_one_batch(burst):
    assert burst["first"].returncode == 0, burst["first"].stderr[-3000:]
    expected = _minute_cells(oracle.views((value, timestamp) for _, _, value, timestamp in burst["records"]))
    assert burst["counted"] == expected


def test_a_rebuild_in_small_batches_never_lowers_a_cell_it_is_refused_in_one_line(burst):
    counted, after = burst["counted"], burst["after_bounded"]
    lowered = {cell: (views, after.get(cell)) for cell, views in counted.items() if after.get(cell, views) < views}
    assert not lowered, f"{len(lowered)} cells lowered, e.g. {sorted(lowered.items())[:5]}"
    run = burst["bounded"]
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("viewcount speed: error: --rebuild reads") and "--max-offsets-per-trigger" in last
    assert after == counted


def test_a_rebuild_reads_its_whole_backlog_in_one_batch_and_restores_every_cell(burst):
    run = burst["whole"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert burst["after_whole"] == burst["counted"]
    batches = [batch for batch in logged_batches(burst["settings"], burst["folder"] / "whole" / "counts")
               if batch.rows_in]
    assert len(batches) == 1 and batches[0].late_dropped == 0, batches
    assert sum(end - batches[0].start_offsets[p] for p, end in batches[0].end_offsets.items()) == len(burst["records"])
