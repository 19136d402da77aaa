"""kill -9 the counter and the archiver, 10 times each at random points, while a million
events arrive: nothing is lost, nothing is counted or archived twice.

Both jobs run side by side, as in production, each in a loop of start, run until it has
finished one more micro-batch and a random 0-8 s more (mid-batch or between two), kill -9
of the job and its JVM. Afterwards each
drains the topic from its checkpoint, and the speed counts must equal the oracle's (late
events aside, each proven late by the micro-batch log) and the archive must hold every
offset exactly once, with the completeness rows adding up to the topic's end offsets.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import threading
import time

import pytest

from tests.integration.speed_support import (
    consume, expected_speed_counts, isolated, kill_hard, logged_batches, speed_counts_of,
    start_viewcount, viewcount,
)
from tests.integration.test_speed_archiver import assert_completeness_matches_topic

# The module fixture (production, kills, drains) runs inside the first test's time limit.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

DAY = dt.date(2026, 11, 23)
EVENTS = int(os.environ.get("VIEWCOUNT_CRASH_EVENTS", "1000000"))
KILLS = int(os.environ.get("VIEWCOUNT_CRASH_KILLS", "10"))
RATE = 2_500  # a million events take about as long as the kills: most land mid-stream


BATCH_LINE = re.compile(rb"^\[(counter|archiver)\] batch \d+:", re.MULTILINE)


def _batches_logged(log) -> int:
    return len(BATCH_LINE.findall(log.read_bytes())) if log.exists() else 0


def _crash_repeatedly(env, log, job_args: list[str], seed: int, kills: list[float]) -> None:
    """KILLS times: start the job, let it finish at least one more micro-batch (so every
    run makes progress and the kill falls among real batches), wait a random 0-8 s more,
    and kill -9 it with its JVM: sometimes mid-batch, sometimes between two."""
    chance = random.Random(seed)
    for _ in range(KILLS):
        before = _batches_logged(log)
        job = start_viewcount(env, *job_args, log=log)
        deadline = time.monotonic() + 300
        while _batches_logged(log) <= before:
            assert job.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the job made no progress in 300 s"
            time.sleep(0.2)
        time.sleep(chance.uniform(0, 8))
        assert job.poll() is None, log.read_text()[-3000:]
        kill_hard(job)
        kills.append(time.monotonic())


@pytest.fixture(scope="module")
def crashed(stack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crashes")
    with isolated(stack, "test-crash") as (settings, env):
        path = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}"
        # Small batches while being killed: each run gets through one quickly, and there are
        # more batch boundaries and more mid-batch moments to land on.
        counter_args = ["speed", "--metrics-port", "0", "--max-offsets-per-trigger", "4000",
                        "--checkpoint", str(folder / "counter")]
        archiver_args = ["archive", "--metrics-port", "0", "--max-offsets-per-trigger", "10000",
                         "--path", path, "--checkpoint", str(folder / "archiver")]
        began = time.monotonic()
        producer = start_viewcount(env, "produce", "--events", str(EVENTS), "--rate", str(RATE),
                                   "--seed", "21", "--day", DAY.isoformat(), "--videos", "2000",
                                   "--late", "0.03", "--oracle", str(folder / "oracle"),
                                   log=folder / "produce.log")
        kills = {"counter": [], "archiver": []}
        loops = [
            threading.Thread(target=_crash_repeatedly, args=(
                env, folder / "counter.log", [*counter_args, "--trigger-seconds", "1"], 21, kills["counter"])),
            threading.Thread(target=_crash_repeatedly, args=(
                env, folder / "archiver.log", [*archiver_args, "--trigger-seconds", "2"], 22, kills["archiver"])),
        ]
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join()
        assert producer.wait(timeout=900) == 0, (folder / "produce.log").read_text()[-3000:]
        produced_at = time.monotonic()
        drain = ["--available-now", "--max-offsets-per-trigger", "250000"]  # bigger batches: fewer
        viewcount(env, *counter_args, *drain, timeout=1800)
        viewcount(env, *archiver_args, *drain, timeout=1800)
        print(f"\ncrashes: {EVENTS:,} events; kills {[len(k) for k in kills.values()]}; "
              f"produced in {produced_at - began:.0f} s, drained in {time.monotonic() - produced_at:.0f} s")
        yield {"settings": settings, "folder": folder, "path": path, "kills": kills,
               "produced_at": produced_at}


def test_both_jobs_were_killed_while_events_were_still_arriving(crashed):
    for job, times in crashed["kills"].items():
        assert len(times) == KILLS, job
        # every kill but possibly the last few happened while the producer was still sending
        assert sum(t < crashed["produced_at"] for t in times) >= KILLS // 2, job


def test_speed_counts_equal_the_oracle_after_the_kills(crashed):
    settings = crashed["settings"]
    batches = logged_batches(settings, crashed["folder"] / "counter" / "counts")
    messages = consume(settings, settings.views_topic)
    assert len(messages) == EVENTS
    expected, late_cells = expected_speed_counts(messages, batches)
    actual = speed_counts_of(settings, expected.keys() | late_cells.keys())
    missing = {cell: n for cell, n in expected.items() if actual.get(cell) != n}
    assert not missing, f"{len(missing)} cells differ, e.g. {list(missing.items())[:5]}"
    assert actual == expected


def test_the_archive_holds_every_offset_exactly_once(crashed, spark):
    from pyspark.sql import functions as F

    from viewcount.inspect import topic_end_offsets

    settings = crashed["settings"]
    ends = topic_end_offsets(settings, settings.views_topic)
    archive = spark.read.parquet(crashed["path"])
    per_partition = {
        row.partition: row for row in archive.groupBy("partition").agg(
            F.count(F.lit(1)).alias("rows"), F.countDistinct("offset").alias("distinct"),
            F.min("offset").alias("first"), F.max("offset").alias("last")).collect()
    }
    expected = {partition: (end, end, 0, end - 1) for partition, end in ends.items() if end}
    assert {p: (r.rows, r.distinct, r.first, r.last) for p, r in per_partition.items()} == expected
    days = {row.arrival_date for row in archive.select("arrival_date").distinct().collect()}
    assert_completeness_matches_topic(settings, days)
