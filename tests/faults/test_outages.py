"""Server outages while events flow: Kafka stopped for 30 s during produce and streaming,
Cassandra for 60 s while the counter writes, MinIO for 30 s while the archiver writes.

The counter and the archiver run continuously the whole time. Each must come back by
itself (restarting its queries from the checkpoints), catch up with the topic, and end
with speed counts equal to the oracle (late drops aside, proven by the micro-batch log)
and an archive holding every offset exactly once. While Cassandra is down the API answers
503 with a JSON error, and answers again by itself once Cassandra is back.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.speed_support import (
    consume, expected_speed_counts, isolated, kill_hard, logged_batches, speed_counts_of,
    start_viewcount,
)
from tests.integration.test_serving_command import serve_running
from tests.integration.test_speed_archiver import assert_archive_matches_topic
from viewcount.inspect import topic_end_offsets

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

DAY = dt.date(2026, 11, 22)
EVENTS = 90_000
RATE = 1_000  # 90 s of production: the outage starts while it is still going
CATCH_UP_S = 300


def _counter_caught_up(settings, checkpoint: Path, ends: dict[int, int]) -> bool:
    try:
        batches = logged_batches(settings, checkpoint / "counts")
    except Exception:  # noqa: BLE001 - no batch or no Cassandra yet: not caught up
        return False
    done = {}
    for batch in batches:
        for partition, end in batch.end_offsets.items():
            done[partition] = max(done.get(partition, 0), end)
    return all(done.get(partition, 0) >= end for partition, end in ends.items() if end)


def _archiver_caught_up(settings, ends: dict[int, int]) -> bool:
    from storage.archive import read_committed_offsets
    from storage.cassandra import connect

    try:
        session = connect(settings)
    except Exception:  # noqa: BLE001 - Cassandra still starting
        return False
    try:
        committed = read_committed_offsets(session, settings.views_topic)
    finally:
        session.cluster.shutdown()
    return all(committed.get(partition, 0) >= end for partition, end in ends.items() if end)


def _log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _run_outage(stack, tmp_path, spark, server: str, seconds: float, seed: int, while_down=None) -> dict:
    """Jobs and a producer running; `server` stopped for `seconds`; everything checked."""
    from infra import stack as local_stack

    with isolated(stack, f"test-outage-{server}") as (settings, env):
        path = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}"
        common = ["--metrics-port", "0", "--max-offsets-per-trigger", "4000"]
        logs = {name: tmp_path / f"{name}.log" for name in ("produce", "counter", "archiver")}
        producer = start_viewcount(env, "produce", "--events", str(EVENTS), "--rate", str(RATE),
                                   "--seed", str(seed), "--day", DAY.isoformat(), "--videos", "300",
                                   "--late", "0.02", "--oracle", str(tmp_path / "oracle"),
                                   log=logs["produce"])
        counter = start_viewcount(env, "speed", "--trigger-seconds", "1", *common,
                                  "--checkpoint", str(tmp_path / "counter"), log=logs["counter"])
        archiver = start_viewcount(env, "archive", "--trigger-seconds", "2", *common, "--path", path,
                                   "--checkpoint", str(tmp_path / "archiver"), log=logs["archiver"])
        jobs = {"counter": counter, "archiver": archiver}
        timings = {}
        try:
            deadline = time.monotonic() + 180
            while "batch 1:" not in _log_text(logs["counter"]) or "[archiver]" not in _log_text(logs["archiver"]):
                assert time.monotonic() < deadline, "the jobs did not start writing"
                for name, job in jobs.items():
                    assert job.poll() is None, _log_text(logs[name])[-3000:]
                time.sleep(1)

            assert producer.poll() is None, "the outage must fall inside production"
            down_at = time.monotonic()
            local_stack.down(stack, only=server)
            observed = while_down(settings) if while_down else None
            time.sleep(max(0.0, seconds - (time.monotonic() - down_at)))
            timings["down_s"] = time.monotonic() - down_at
            local_stack.up(stack)
            up_at = time.monotonic()
            timings["restart_s"] = up_at - down_at - timings["down_s"]

            assert producer.wait(timeout=600) == 0, _log_text(logs["produce"])[-3000:]
            ends = topic_end_offsets(settings, settings.views_topic)
            assert sum(ends.values()) == EVENTS
            deadline = time.monotonic() + CATCH_UP_S
            pending = {"counter": lambda: _counter_caught_up(settings, tmp_path / "counter", ends),
                       "archiver": lambda: _archiver_caught_up(settings, ends)}
            while pending:
                for name, caught_up in list(pending.items()):
                    assert jobs[name].poll() is None, f"{name} exited:\n{_log_text(logs[name])[-3000:]}"
                    if caught_up():
                        timings[f"{name}_caught_up_s"] = time.monotonic() - up_at
                        del pending[name]
                assert time.monotonic() < deadline, f"not caught up {CATCH_UP_S} s after the outage: {pending}"
                time.sleep(1)
        finally:
            for job in (producer, counter, archiver):
                if job.poll() is None:
                    kill_hard(job)
            if not local_stack.is_up(stack):
                local_stack.up(stack)

        batches = logged_batches(settings, tmp_path / "counter" / "counts")
        expected, late_cells = expected_speed_counts(consume(settings, settings.views_topic), batches)
        assert speed_counts_of(settings, expected.keys() | late_cells.keys()) == expected
        assert_archive_matches_topic(settings, spark, path)
        restarts = {name: _log_text(logs[name]).count("restarting from the checkpoints") for name in jobs}
        print(f"\n{server} down {timings['down_s']:.0f} s, back in {timings['restart_s']:.1f} s; "
              f"caught up after: counter {timings['counter_caught_up_s']:.1f} s, archiver "
              f"{timings['archiver_caught_up_s']:.1f} s; query restarts {restarts}")
        return {"timings": timings, "restarts": restarts, "observed": observed, "logs": logs}


def test_kafka_down_30s_during_produce_and_streaming(stack, spark, tmp_path):
    _run_outage(stack, tmp_path, spark, "kafka", 30, seed=71)


def test_minio_down_30s_while_the_archiver_writes(stack, spark, tmp_path):
    result = _run_outage(stack, tmp_path, spark, "minio", 30, seed=72)
    assert result["restarts"]["counter"] == 0  # the counter does not use S3


def test_cassandra_down_60s_while_the_counter_writes_and_the_api_answers_503(stack, spark, tmp_path):
    with serve_running(tmp_path / "serve.log") as (url, api, _):
        day = DAY.isoformat()
        query = f"{url}/v1/videos/video-1/views?start={day}T00:00:00Z&end={day}T01:00:00Z"
        assert httpx.get(query, timeout=30).status_code == 200

        def uncached(n: int) -> str:  # a video never asked before: the API's cache cannot answer
            return query.replace("/video-1/", f"/video-down-{n}/")

        def while_down(settings):
            answers = []
            for n in range(10):
                answers.append(httpx.get(uncached(n), timeout=30))
                answers.append(httpx.get(url + "/healthz", timeout=30))
                time.sleep(2)
            return answers

        result = _run_outage(stack, tmp_path, spark, "cassandra", 60, seed=73, while_down=while_down)
        answers = result["observed"]
        assert {answer.status_code for answer in answers} == {503}, [a.text for a in answers]
        assert all("error" in answer.json() for answer in answers)
        # Back by itself: the same server process answers again, without a restart.
        deadline = time.monotonic() + 60
        while httpx.get(uncached(1_000 + int(time.monotonic())), timeout=30).status_code != 200:
            assert api.poll() is None
            assert time.monotonic() < deadline, "the API did not recover after Cassandra came back"
            time.sleep(1)
        assert api.poll() is None
        assert result["restarts"]["counter"] >= 1  # writes failed while Cassandra was down
