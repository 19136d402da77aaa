"""kill -9 the counter and the archiver, mid-batch and between batches, while events
arrive: nothing is lost, nothing is counted or archived twice.

Both jobs run side by side, as in production, each in a loop: start, run until it has
finished one more micro-batch, then kill -9 the job and its JVM, alternately mid-batch
(a batch is in the checkpoint's offset log and not yet in its commit log: the restart
replays it) and between batches (the last planned batch is committed). Where each kill
landed is read from the checkpoint after it. Afterwards each job drains the topic from its
checkpoint, and the speed counts must equal the oracle's (late events aside, each proven
late by the micro-batch log) and the archive must hold every offset exactly once, with the
completeness rows adding up to the topic's end offsets.

An API worker follows the counter's cell feed all the while and is asked for every
(video, day) partition of the speed table again and again, so it holds them through the
kills and the replays: once the counter has drained the topic, each partition it holds
must equal the speed table's, cell by cell (``serving.live``).

Events keep arriving until every kill is done (and at least VIEWCOUNT_CRASH_EVENTS have
been sent), so every kill falls during production however slow the machine is. What
matters is where the kills land, not how many events flow: CI kills each job 3 times
among at least 10,000 events (production lasts as long as the kills do); `make soak` 10
times among at least 1,000,000 (tests/faults/scale.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.store import ViewStore

from tests.faults.scale import CRASH_EVENTS as EVENTS, CRASH_KILLS as KILLS, CRASH_RATE as RATE
from tests.support.speed import (
    assert_completeness_matches_topic, consume, expected_speed_counts, isolated, kill_hard, logged_batches,
    speed_counts_of, start_viewcount,
)
from tests.support.reconcile import run_together
from tests.support.serving import running

# The module fixture (production, kills, drains) runs inside the first test's time limit.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

MID_BATCH, BETWEEN_BATCHES = "mid-batch", "between batches"
AIM_S = 60  # how long a kill waits for the moment it aims at before it kills anyway
# How far into a batch a mid-batch kill goes, at most: a counter batch at the CI rate can
# commit in well under a second.
MID_BATCH_DELAY_S = 0.3
CHUNK_S = 30  # production runs in producers of this many seconds each, one after another

BATCH_LINE = re.compile(rb"^\[(counter|archiver)\] batch \d+:", re.MULTILINE)


def _batches_logged(log) -> int:
    return len(BATCH_LINE.findall(log.read_bytes())) if log.exists() else 0


def _newest_batch(log_folder: Path) -> int:
    return max((int(path.name) for path in log_folder.glob("[0-9]*") if path.name.isdigit()), default=-1)


def _moment(checkpoint: Path) -> str:
    """Mid-batch while the offset log holds a batch the commit log does not yet."""
    planned, committed = _newest_batch(checkpoint / "offsets"), _newest_batch(checkpoint / "commits")
    return MID_BATCH if planned > committed else BETWEEN_BATCHES


def _await_moment(checkpoint: Path, aim: str, chance: random.Random) -> None:
    """Wait (at most AIM_S) until the job is at the aimed moment. Mid-batch, also go a
    random way into the batch; a small batch can commit within that delay, and then the
    next batch is aimed at instead, so the kill does not land between batches by luck."""
    deadline = time.monotonic() + AIM_S
    while time.monotonic() < deadline:
        if _moment(checkpoint) != aim:
            time.sleep(0.01)
            continue
        if aim == BETWEEN_BATCHES:
            return
        time.sleep(chance.uniform(0, MID_BATCH_DELAY_S))
        if _moment(checkpoint) == MID_BATCH:
            return


class Production(threading.Thread):
    """Producers of CHUNK_S seconds of events at RATE, one after another, until the kills
    are over and at least EVENTS were sent."""

    def __init__(self, env, log: Path, kills_over: threading.Event) -> None:
        super().__init__(daemon=True)
        self.env, self.log, self.kills_over = env, log, kills_over
        self.sent, self.failure, self.over = 0, None, threading.Event()

    @property
    def producing(self) -> bool:
        return not self.over.is_set()

    def run(self) -> None:
        chunk, seed = RATE * CHUNK_S, 21
        try:
            while self.sent < EVENTS or not self.kills_over.is_set():
                size = min(chunk, EVENTS - self.sent) if self.sent < EVENTS else chunk
                producer = start_viewcount(self.env, "produce", "--events", str(size), "--rate", str(RATE),
                                           "--seed", str(seed), "--videos", "300", "--late", "0.03",
                                           log=self.log)
                if producer.wait() != 0:
                    self.failure = self.log.read_text()[-3000:]
                    return
                self.sent, seed = self.sent + size, seed + 1
        finally:
            self.over.set()


def _crash_repeatedly(env, log, checkpoint: Path, job_args: list[str], seed: int, production: Production,
                      kills: list[tuple]) -> None:
    """KILLS times: start the job, let it finish at least one more micro-batch (so every
    run makes progress and the kill falls among real batches), then kill -9 it with its
    JVM, alternately a random 0-0.3 s into a batch and just after a batch was committed.
    Records (when, where it landed, whether events were still being produced)."""
    chance = random.Random(seed)
    for number in range(KILLS):
        aim = MID_BATCH if number % 2 == 0 else BETWEEN_BATCHES
        before = _batches_logged(log)
        job = start_viewcount(env, *job_args, log=log)
        deadline = time.monotonic() + 300
        while _batches_logged(log) <= before:
            assert job.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the job made no progress in 300 s"
            time.sleep(0.2)
        _await_moment(checkpoint, aim, chance)
        assert job.poll() is None, log.read_text()[-3000:]
        kill_hard(job)
        kills.append((time.monotonic(), _moment(checkpoint), production.producing))


class Asker(threading.Thread):
    """Asks the API for every (video, day) partition the speed table has, round after round,
    so the worker holds each from its first count on; counts the rounds."""

    def __init__(self, url: str, settings) -> None:
        super().__init__(daemon=True)
        self.url, self.settings = url, settings
        self.rounds, self.failures = 0, []
        self.stopping = threading.Event()

    def run(self) -> None:
        from storage.cassandra import connect
        from storage.minute_counts import read_partitions

        session = connect(self.settings)
        try:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                while not self.stopping.is_set():
                    for video_id, day in read_partitions(session):
                        answer = client.get(f"/v1/videos/{video_id}/views", params={
                            "start": f"{day}T00:00:00Z", "end": f"{day + dt.timedelta(days=1)}T00:00:00Z"})
                        if answer.status_code != 200:
                            self.failures.append(answer.text)
                    self.rounds += 1
                    time.sleep(0.2)
        finally:
            session.cluster.shutdown()


@pytest.fixture(scope="module")
def crashed(stack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crashes")
    with isolated(stack, "test-crash") as (settings, env):
        path = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}"
        # Small batches while being killed: each run gets through one quickly, and there are
        # more batch boundaries and more mid-batch moments to land on. The triggers leave
        # time between batches at the CI rate (at the soak rate there is only the moment
        # the next batch is planned).
        counter_args = ["speed", "--metrics-port", "0", "--max-offsets-per-trigger", "1000",
                        "--checkpoint", str(folder / "counter")]
        archiver_args = ["archive", "--metrics-port", "0", "--max-offsets-per-trigger", "2500",
                         "--path", path, "--checkpoint", str(folder / "archiver")]
        began = time.monotonic()
        api = ViewStore(settings, Limits(rate_limit_rps=0))
        serving = contextlib.ExitStack()
        asker = Asker(serving.enter_context(running(create_app(api))), settings)
        asker.start()
        kills_over = threading.Event()
        production = Production(env, folder / "produce.log", kills_over)
        production.start()
        kills = {"counter": [], "archiver": []}
        loops = [
            threading.Thread(target=_crash_repeatedly, args=(
                env, folder / "counter.log", folder / "counter" / "counts", [*counter_args, "--trigger-seconds", "2"],
                21, production, kills["counter"])),
            threading.Thread(target=_crash_repeatedly, args=(
                env, folder / "archiver.log", folder / "archiver", [*archiver_args, "--trigger-seconds", "4"],
                22, production, kills["archiver"])),
        ]
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join()
        kills_over.set()
        production.join(timeout=900)
        assert production.over.is_set() and production.failure is None, production.failure
        produced_at = time.monotonic()
        drain = ["--available-now", "--max-offsets-per-trigger", "250000"]  # bigger batches: fewer
        run_together(env, (*counter_args, *drain), (*archiver_args, *drain), timeout=1800)
        landed = {job: [(where, "producing" if producing else "after production") for _, where, producing in times]
                  for job, times in kills.items()}
        print(f"\ncrashes: {production.sent:,} events at {RATE:,}/s; kills landed {landed}; "
              f"produced in {produced_at - began:.0f} s, drained in {time.monotonic() - produced_at:.0f} s")
        try:
            yield {"settings": settings, "folder": folder, "path": path, "kills": kills, "sent": production.sent,
                   "api": api, "asker": asker}
        finally:
            asker.stopping.set()
            asker.join(timeout=120)
            serving.close()
            api.close()


def test_both_jobs_were_killed_while_events_were_still_arriving(crashed):
    for job, kills in crashed["kills"].items():
        assert len(kills) == KILLS, job
        assert all(producing for _, _, producing in kills), (job, kills)


def test_both_jobs_were_killed_mid_batch_and_between_batches_during_production(crashed):
    for job, kills in crashed["kills"].items():
        landed = {where for _, where, producing in kills if producing}
        assert landed == {MID_BATCH, BETWEEN_BATCHES}, (job, kills)


def test_speed_counts_equal_the_oracle_after_the_kills(crashed):
    settings = crashed["settings"]
    batches = logged_batches(settings, crashed["folder"] / "counter" / "counts")
    messages = consume(settings, settings.views_topic)
    assert len(messages) == crashed["sent"] >= EVENTS
    expected, late_cells = expected_speed_counts(messages, batches)
    actual = speed_counts_of(settings, expected.keys() | late_cells.keys())
    missing = {cell: n for cell, n in expected.items() if actual.get(cell) != n}
    assert not missing, f"{len(missing)} cells differ, e.g. {list(missing.items())[:5]}"
    assert actual == expected


def test_the_archive_holds_every_offset_exactly_once(crashed, spark):
    from pyspark.sql import functions as F

    from storage.topics import topic_end_offsets

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


def test_every_partition_the_api_holds_equals_the_speed_table_cell_by_cell(crashed):
    """The worker followed the feed through every kill and replay; what it holds now (the
    counter has drained the topic and published its last cells) is the speed table."""
    from storage.cassandra import connect
    from storage.minute_counts import read_minute_counts, read_partitions

    api, asker = crashed["api"], crashed["asker"]
    deadline = time.monotonic() + 60
    while not (api.live.usable and api.live.lag_records == 0):  # the last cells taken in
        assert time.monotonic() < deadline, (api.live.state, api.live.detail, api.live.lag_records)
        time.sleep(0.1)
    # One whole round more, so every partition is held (a follower that fell behind during
    # the drain dropped what it held and reads it again); then the asker stops.
    rounds = asker.rounds
    while asker.rounds < rounds + 2:
        assert time.monotonic() < deadline + 120, asker.rounds
        time.sleep(0.1)
    asker.stopping.set()
    asker.join(timeout=120)
    time.sleep(1.0)  # the last pushes handed to the event loop's thread
    assert asker.rounds >= 3 and not asker.failures, (asker.rounds, asker.failures[:3])
    print(f"\napi: {asker.rounds} rounds, {api.live.cells_applied:,} cells pushed, "
          f"{api.live.resyncs} starts of following, {len(api.live._held)} partitions held")
    held = {key: dict(zip(memoryview(minutes).cast("H").tolist(), memoryview(views).cast("q").tolist()))
            for key, (minutes, views, *_) in list(api.live._held.items())}
    session = connect(crashed["settings"])
    try:
        stored = {}
        for video_id, day in held:
            midnight = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
            stored[(video_id, day)] = {(cell.minute - midnight) // dt.timedelta(minutes=1): cell.views
                                       for cell in read_minute_counts(session, video_id, day)}
        partitions = set(read_partitions(session))
    finally:
        session.cluster.shutdown()
    assert api.live.cells_applied > 0 and len(held) >= 0.9 * len(partitions) > 0, (len(held), len(partitions))
    differing = {key: (held[key], stored[key]) for key in held if held[key] != stored[key]}
    assert not differing, f"{len(differing)} of {len(held)} held partitions differ, e.g. {list(differing.items())[:2]}"
