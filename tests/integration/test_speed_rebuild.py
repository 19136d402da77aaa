"""A counter started with a new checkpoint against a topic earlier counters counted (a
lost checkpoint), against the real Kafka and Cassandra: refused unless told to rebuild, and
a rebuild never replaces a cell with a partial count.

One scenario, run once: count a day; zero every cell and rebuild while Kafka holds every
record (all cells come back); delete the first half of every partition, as retention
would; start a new checkpoint without and then with ``--rebuild``; restart the rebuild.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from tests.integration.speed_support import isolated, viewcount

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 21)


def _speed(env, folder, checkpoint: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewcount.cli", "speed", "--available-now", "--metrics-port", "0",
                           "--checkpoint", str(folder / checkpoint), *extra],
                          env=env, capture_output=True, text=True, timeout=600)


def _cells(session) -> dict:
    return {(row.video_id, row.minute): row.views
            for row in session.execute("SELECT video_id, minute, views FROM speed_minute_views")}


def _registered(session, folder, checkpoint: str):
    rows = [row for row in session.execute("SELECT checkpoint, write_floor, query_id FROM speed_queries")
            if row.checkpoint == str(folder / checkpoint / "counts")]
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


@pytest.fixture(scope="module")
def scenario(stack, tmp_path_factory):
    from storage.cassandra import connect

    folder = tmp_path_factory.mktemp("rebuild")
    with isolated(stack, "test-rebuild") as (settings, env):
        session = connect(settings)
        try:
            viewcount(env, "produce", "--events", "20000", "--seed", "11", "--day", DAY.isoformat(), "--videos", "150",
                      "--duplicates", "0.05", "--malformed", "0.01", "--late", "0")
            viewcount(env, "speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "first"))
            counted = _cells(session)
            for video_id, minute in counted:
                session.execute("UPDATE speed_minute_views SET views = 0 WHERE video_id = %s AND day = %s AND minute = %s",
                                (video_id, minute.date(), minute))
            zeroed = _cells(session)
            rebuild_started = dt.datetime.now(dt.timezone.utc)
            full_rebuild = _speed(env, folder, "rebuilt", "--rebuild")
            after_full_rebuild = _cells(session)
            cut = _half_of_every_partition_expires(settings)
            refused = _speed(env, folder, "third")
            after_refusal = _cells(session)
            started = dt.datetime.now(dt.timezone.utc)
            partial_rebuild = _speed(env, folder, "third", "--rebuild")
            after_partial_rebuild = _cells(session)
            restarted = _speed(env, folder, "third")
            rebuild_again = _speed(env, folder, "third", "--rebuild")
            latest = _speed(env, folder, "latest", "--rebuild", "--starting-offsets", "latest")
            yield {
                "settings": settings, "session": session, "folder": folder, "counted": counted, "zeroed": zeroed,
                "full_rebuild": full_rebuild, "after_full_rebuild": after_full_rebuild, "cut": cut,
                "refused": refused, "after_refusal": after_refusal, "rebuild_started": rebuild_started,
                "started": started,
                "partial_rebuild": partial_rebuild, "after_partial_rebuild": after_partial_rebuild,
                "restarted": restarted, "after_restart": _cells(session), "rebuild_again": rebuild_again,
                "latest": latest,
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
    assert scenario["after_partial_rebuild"] == scenario["counted"]


def test_a_rebuild_restarts_from_its_checkpoint_with_its_floor_and_is_not_started_twice(scenario):
    assert scenario["restarted"].returncode == 0, scenario["restarted"].stderr[-3000:]
    assert "rebuilding" not in scenario["restarted"].stderr
    assert scenario["after_restart"] == scenario["counted"]
    again = scenario["rebuild_again"]
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "--rebuild starts a new checkpoint" in again.stderr.strip().splitlines()[-1]


def test_a_rebuild_from_the_latest_offsets_writes_only_minutes_after_its_start(scenario):
    run = scenario["latest"]
    assert run.returncode == 0, run.stderr[-3000:]
    floor = _registered(scenario["session"], scenario["folder"], "latest").write_floor.replace(tzinfo=dt.timezone.utc)
    assert scenario["started"] + dt.timedelta(minutes=10) < floor
    assert "rebuilding the speed table from latest offsets: writing minutes from" in run.stderr
