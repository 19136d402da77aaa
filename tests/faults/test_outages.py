"""Server outages while events flow, one after the other in one pipeline: Kafka stopped
during produce and streaming, MinIO while the archiver writes, Cassandra while the counter
writes (15, 15 and 30 s in CI; 30, 30 and 60 s under `make soak`: tests/faults/scale.py).

The counter and the archiver run continuously the whole time and are never restarted by
the test. Each outage falls inside a production of its own (30,000 events at 1,000/s in CI,
90,000 under `make soak`: tests/faults/scale.py) and starts once both jobs have written a
batch of it. After the server is back, each job must come back by itself (restarting its
queries from the checkpoints when they failed) and catch up with the topic before the next
outage starts, so each outage's recovery is measured on its own. At the end every record
produced is in the topic once, the speed counts equal the oracle (late drops aside, proven
by the micro-batch log) and the archive holds every record once, byte for byte. While
Cassandra is down the API answers 503 with a JSON error, and answers 200 again by itself
once Cassandra is back.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.pipeline import (
    RESTARTED, archiver_caught_up, assert_counted_exactly, batches_read, counter_caught_up, log_text, start_jobs,
    wait_until_writing,
)
from tests.faults.scale import OUTAGE_EVENTS, OUTAGE_SECONDS
from tests.support.speed import assert_archive_matches_topic, isolated, kill_hard, start_viewcount, viewcount
from tests.support.serve import serve_running

from storage.topics import topic_end_offsets

# The module fixture (three outages in sequence) runs inside the first test's time limit.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

DAY = dt.date(2026, 11, 22)
RATE = 1_000  # each production lasts OUTAGE_EVENTS / RATE s: the outage starts while it goes on
WARM_UP_EVENTS = 2_000  # before the jobs start, so each has a first batch to show it is running
OUTAGES = [("kafka", OUTAGE_SECONDS), ("minio", OUTAGE_SECONDS), ("cassandra", 2 * OUTAGE_SECONDS)]
CATCH_UP_S = 300
# Issue 13's recovery goal: each job caught up within 30 s plus backlog / catch-up rate after
# the server is back. The rates are the catch-up figures of docs/benchmarks.md (2026-12-03,
# net of start-up); the backlog is at most one production's records. Printed, not asserted:
# timing goals are benchmarks, not test verdicts.
RECOVERY_GOAL_BASE_S = 30.0
CATCH_UP_RATE = {"counter": 21_000, "archiver": 41_000}
@dataclass
class Outage:
    server: str
    seconds: float
    producing_at_down: bool = False
    down_s: float = 0.0
    restart_s: float = 0.0
    caught_up_s: dict = field(default_factory=dict)  # job -> seconds after the server was back
    restarts: dict = field(default_factory=dict)  # job -> query restarts from its start to caught up
    api_answers: list = field(default_factory=list)  # while down (Cassandra only)
    api_back_s: float | None = None  # first 200 after the server was back (Cassandra only)
    produced_s: float = 0.0  # when its production ended, seconds after the server was back (<= 0: before)


@dataclass
class Outages:
    settings: object
    folder: Path
    path: str
    by_server: dict  # server -> Outage
    produced: int  # records the producers were asked for
    api_alive: bool  # the API process never exited


class Api:
    """The running `viewcount serve`: reads of videos its cache has never seen, and /healthz."""

    def __init__(self, url: str, process) -> None:
        self.url, self.process, self.asked = url, process, 0
        day = DAY.isoformat()
        self.query = f"{url}/v1/videos/video-1/views?start={day}T00:00:00Z&end={day}T01:00:00Z"

    def uncached(self) -> httpx.Response:
        self.asked += 1
        return httpx.get(self.query.replace("/video-1/", f"/video-down-{self.asked}/"), timeout=30)

    def while_down(self) -> list[httpx.Response]:
        answers = []
        for _ in range(10):
            answers.append(self.uncached())
            answers.append(httpx.get(self.url + "/healthz", timeout=30))
            time.sleep(2)
        return answers

    def seconds_until_it_answers(self, timeout: float = 120) -> float:
        began = time.monotonic()
        while self.uncached().status_code != 200:
            assert self.process.poll() is None, "the API exited"
            assert time.monotonic() - began < timeout, "the API did not recover after Cassandra came back"
            time.sleep(1)
        return time.monotonic() - began


def _wait_until_caught_up(settings, folder: Path, jobs: dict, logs: dict, outage: Outage, up_at: float) -> None:
    ends = topic_end_offsets(settings, settings.views_topic)
    pending = {"counter": lambda: counter_caught_up(settings, folder / "counter", ends),
               "archiver": lambda: archiver_caught_up(settings, ends)}
    deadline = time.monotonic() + CATCH_UP_S
    while pending:
        for name, caught_up in list(pending.items()):
            assert jobs[name].poll() is None, f"{name} exited:\n{log_text(logs[name])[-3000:]}"
            if caught_up():
                outage.caught_up_s[name] = time.monotonic() - up_at
                del pending[name]
        assert time.monotonic() < deadline, f"not caught up {CATCH_UP_S} s after the {outage.server} outage: {pending}"
        time.sleep(1)


def _outage(stack, settings, env, folder: Path, jobs: dict, logs: dict, api: Api, outage: Outage,
            seed: int) -> None:
    """A production; the server stopped once both jobs write it; back; both caught up."""
    from infra import stack as local_stack

    marks = {name: len(log_text(logs[name])) for name in jobs}
    before = {name: batches_read(logs[name]) for name in jobs}
    log = folder / f"produce-{outage.server}.log"
    producer = start_viewcount(env, "produce", "--events", str(OUTAGE_EVENTS), "--rate", str(RATE),
                               "--seed", str(seed), "--day", DAY.isoformat(), "--videos", "300",
                               "--late", "0.02", log=log)
    try:
        wait_until_writing(jobs, logs, before)
        outage.producing_at_down = producer.poll() is None
        down_at = time.monotonic()
        local_stack.down(stack, only=outage.server)
        if outage.server == "cassandra":
            outage.api_answers = api.while_down()
        time.sleep(max(0.0, outage.seconds - (time.monotonic() - down_at)))
        outage.down_s = time.monotonic() - down_at
        local_stack.up(stack)
        up_at = time.monotonic()
        outage.restart_s = up_at - down_at - outage.down_s
        if outage.server == "cassandra":
            outage.api_back_s = api.seconds_until_it_answers()
        assert producer.wait(timeout=600) == 0, log_text(log)[-3000:]
        outage.produced_s = time.monotonic() - up_at
    finally:
        if producer.poll() is None:
            kill_hard(producer)
    _wait_until_caught_up(settings, folder, jobs, logs, outage, up_at)
    outage.restarts = {name: log_text(logs[name])[marks[name]:].count(RESTARTED) for name in jobs}
    print(f"\n{outage.server} down {outage.down_s:.0f} s, back in {outage.restart_s:.1f} s; caught up after: "
          f"counter {outage.caught_up_s['counter']:.1f} s, archiver {outage.caught_up_s['archiver']:.1f} s; "
          f"query restarts {outage.restarts}"
          + (f"; API 200 again {outage.api_back_s:.1f} s after" if outage.api_back_s is not None else ""))
    for name, rate in CATCH_UP_RATE.items():
        # A production still going when the server came back is backlog only once it ended.
        took = outage.caught_up_s[name] - max(outage.produced_s, 0.0)
        goal = RECOVERY_GOAL_BASE_S + OUTAGE_EVENTS / rate
        print(f"  {name}: caught up {took:.1f} s after the server was back and the production over; "
              f"goal <= {goal:.1f} s (30 s + {OUTAGE_EVENTS:,} records at {rate:,}/s): "
              f"{'met' if took <= goal else 'NOT met'}")


@pytest.fixture(scope="module")
def outages(stack, tmp_path_factory):
    from infra import stack as local_stack

    folder = tmp_path_factory.mktemp("outages")
    with isolated(stack, "test-outages") as (settings, env):
        path = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}"
        viewcount(env, "produce", "--events", str(WARM_UP_EVENTS), "--seed", "70", "--day", DAY.isoformat(),
                  "--videos", "300", "--late", "0.02")
        jobs, logs = start_jobs(env, folder, path)
        by_server = {server: Outage(server, seconds) for server, seconds in OUTAGES}
        try:
            with serve_running(folder / "serve.log") as (url, process, _):
                api = Api(url, process)
                assert httpx.get(api.query, timeout=30).status_code == 200
                wait_until_writing(jobs, logs, {name: 0 for name in jobs})
                for seed, outage in enumerate(by_server.values(), start=71):
                    _outage(stack, settings, env, folder, jobs, logs, api, outage, seed)
                api_alive = process.poll() is None
        finally:
            for job in jobs.values():
                if job.poll() is None:
                    kill_hard(job)
            if not local_stack.is_up(stack):
                local_stack.up(stack)
        yield Outages(settings, folder, path, by_server, WARM_UP_EVENTS + len(OUTAGES) * OUTAGE_EVENTS, api_alive)


def test_kafka_down_during_produce_and_streaming(outages):
    kafka = outages.by_server["kafka"]
    assert kafka.producing_at_down, "the outage must fall inside production"
    assert kafka.caught_up_s.keys() == {"counter", "archiver"}


def test_minio_down_while_the_archiver_writes(outages):
    minio = outages.by_server["minio"]
    assert minio.producing_at_down, "the outage must fall inside production"
    assert minio.caught_up_s.keys() == {"counter", "archiver"}
    assert minio.restarts["counter"] == 0  # the counter does not use S3


def test_cassandra_down_while_the_counter_writes_and_the_api_answers_503(outages):
    cassandra = outages.by_server["cassandra"]
    assert cassandra.producing_at_down, "the outage must fall inside production"
    assert cassandra.caught_up_s.keys() == {"counter", "archiver"}
    answers = cassandra.api_answers
    assert answers and {answer.status_code for answer in answers} == {503}, [a.text for a in answers]
    assert all("error" in answer.json() for answer in answers)
    # Back by itself: the same server process answered 200 again, without a restart.
    assert cassandra.api_back_s is not None and outages.api_alive
    assert cassandra.restarts["counter"] >= 1  # writes failed while Cassandra was down


def test_every_record_is_in_the_topic_once_counted_exactly_and_archived_byte_for_byte(outages, spark):
    settings = outages.settings
    # The producers' retries across the Kafka outage lost no record and wrote none twice.
    assert_counted_exactly(settings, outages.folder / "counter", outages.produced)
    assert_archive_matches_topic(settings, spark, outages.path)
