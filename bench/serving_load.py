"""The load of ``bench/serving_latency.py`` (and the keyspace ``bench/serving_read_cost.py``
reads): the seeded keyspace and its requests, the counter's stand-in, vegeta, the raw
Cassandra reads, a server's CPU.

The keyspace (``viewcount_bench``, or ``VIEWCOUNT_BENCH_KEYSPACE``) holds ``videos``
videos: a promoted batch version of the day before yesterday (final) and speed rows of
that day, yesterday and today (provisional, neither promoted). Its cell feed topic is its
own (``<keyspace>.cells``), so the API worker follows only the stand-in's cells.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from storage.batch_results import delete_promotion, prepare_version_minute_range_read, set_promotion, write_version_cells
from storage.cassandra import connect
from storage.cell_feed import encode
from storage.kafka_config import QUIET_LOGGER, client_config
from storage.minute_counts import MinuteCount, prepare_minute_range_read, upsert_minute_counts
from settings.environment import Settings

VEGETA = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"
KEYSPACE = "viewcount_bench"
UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)
FINAL_DAY, WINDOW = "final day", "2¼-day window"


@dataclass(frozen=True)
class Target:
    video_id: str
    kind: str  # FINAL_DAY or WINDOW
    start: dt.datetime
    end: dt.datetime

    def path(self) -> str:
        return (f"/v1/videos/{self.video_id}/views?start={self.start:%Y-%m-%dT%H:%M:%SZ}"
                f"&end={self.end:%Y-%m-%dT%H:%M:%SZ}")

    def days(self) -> list[tuple[dt.date, dt.datetime, dt.datetime]]:
        """(day, first minute, end minute) of each UTC day the range covers."""
        parts, day_start = [], dt.datetime.combine(self.start.date(), dt.time(), tzinfo=UTC)
        while day_start < self.end:
            parts.append((day_start.date(), max(self.start, day_start), min(self.end, day_start + DAY)))
            day_start += DAY
        return parts


def vegeta_binary(settings: Settings) -> Path:
    """vegeta, built once with ``go install`` at a pinned version into the cache dir."""
    bin_dir = settings.cache_dir / f"vegeta-{VEGETA_VERSION}"
    binary = bin_dir / "vegeta"
    if not binary.exists():
        print(f"building vegeta {VEGETA_VERSION} into {bin_dir} ...", file=sys.stderr)
        subprocess.run(["go", "install", f"{VEGETA}@{VEGETA_VERSION}"], check=True,
                       env={**os.environ, "GOBIN": str(bin_dir)})
    return binary


def bench_settings() -> Settings:
    """The stack's settings with the benchmark's own keyspace and cell feed topic."""
    keyspace = os.environ.get("VIEWCOUNT_BENCH_KEYSPACE", KEYSPACE)
    return Settings.from_env().replaced(keyspace=keyspace, cells_topic=f"{keyspace}.cells")


def bench_days() -> tuple[dt.date, dt.date, dt.date]:
    """(final day, yesterday, today): the day before yesterday is the promoted one."""
    today = dt.datetime.now(UTC).date()
    return today - 2 * DAY, today - DAY, today


def seed(settings: Settings, videos: int, minutes: int, write: bool = True) -> list[Target]:
    """A promoted batch version of the final day and speed rows of all three days; the targets."""
    rng = random.Random(1)
    final_day, yesterday, today = bench_days()
    midnight = {day: dt.datetime.combine(day, dt.time(), tzinfo=UTC) for day in (final_day, yesterday, today)}
    targets = []
    for number in range(videos):
        video_id = f"bench-{number:05d}"
        targets.append(Target(video_id, FINAL_DAY, midnight[final_day], midnight[yesterday]))
        targets.append(Target(video_id, WINDOW, midnight[final_day] + dt.timedelta(hours=18),
                              midnight[today] + DAY))
    rng.shuffle(targets)
    if not write:
        return targets
    session = connect(settings)
    for number in range(videos):
        video_id = f"bench-{number:05d}"
        speed_rows, batch_rows = [], []
        for day in (final_day, yesterday, today):
            for minute in rng.sample(range(1440), minutes):
                speed_rows.append(MinuteCount(video_id, midnight[day] + dt.timedelta(minutes=minute),
                                              rng.randint(1, 1000)))
        batch_rows = [(r.video_id, r.minute, r.views + rng.randint(0, 3)) for r in speed_rows if r.day == final_day]
        upsert_minute_counts(session, speed_rows)
        write_version_cells(session, 1, batch_rows)
        if number % 200 == 199:
            print(f"seeded {number + 1:,} of {videos:,} videos", file=sys.stderr, flush=True)
    set_promotion(session, final_day, 1)
    for day in (yesterday, today):
        delete_promotion(session, day)
    session.cluster.shutdown()
    print(f"seeded {videos} videos x 3 days x {minutes} minutes into {settings.keyspace}", file=sys.stderr)
    return targets


class SpeedWriter:
    """Plays the counter at ``rate`` cells a second over the bench's videos: every 2 s one
    batch of cells of today's current minute, upserted to the speed table with one write
    timestamp (microseconds, ``USING TIMESTAMP``, later than any before it) and then
    published to the cell feed with that timestamp (``storage.cell_feed.encode``), each
    acknowledged by every in-sync replica, as the counter does after its Cassandra write."""

    def __init__(self, settings: Settings, videos: int, rate: int):
        self.settings, self.videos, self.rate = settings, videos, rate
        self.stop = threading.Event()
        self.written = self.published = self.failed_batches = 0
        self.failure: str | None = None  # the first
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SpeedWriter":
        if self.rate > 0:
            self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(60)

    def _run(self) -> None:
        from confluent_kafka import Producer

        session, rng, stamp = connect(self.settings), random.Random(2), 0
        producer = Producer(client_config(self.settings, **{"acks": "all", "linger.ms": 5, "logger": QUIET_LOGGER}))
        failures: list[str] = []

        def delivered(error, _message) -> None:
            if error is not None:
                failures.append(error.str())

        try:
            while not self.stop.wait(2.0):
                minute = dt.datetime.now(UTC).replace(second=0, microsecond=0)
                stamp = max(stamp + 1, time.time_ns() // 1000)
                cells = [MinuteCount(f"bench-{n:05d}", minute, rng.randint(1, 1000))
                         for n in rng.sample(range(self.videos), min(self.videos, self.rate * 2))]
                try:
                    self.written += upsert_minute_counts(session, cells, write_timestamp=stamp)
                except Exception as error:  # noqa: BLE001 - a batch lost is counted; the next one goes on
                    self.failed_batches += 1
                    self.failure = self.failure or f"{type(error).__name__}: {str(error)[:200]}"
                    continue  # as the counter, which publishes only what it wrote
                minute_ms = int(minute.timestamp()) * 1000
                for cell in cells:
                    key, value = encode(cell.video_id, minute_ms, cell.views, stamp)
                    producer.produce(self.settings.cells_topic, key=key, value=value, on_delivery=delivered)
                    producer.poll(0)
                if producer.flush(30) or failures:
                    self.failed_batches += 1
                    self.failure = self.failure or f"cells not published: {failures[:1] or 'flush timed out'}"
                    failures.clear()
                    continue
                self.published += len(cells)
        finally:
            session.cluster.shutdown()


@contextlib.contextmanager
def server_cores(settings: Settings, workers: int, own: bool):
    """Yields the CPUs the server under test runs on (None: every one, shared with the rest).

    With ``own``, the last ``workers`` CPUs are the server's alone, as on a node of its
    own: the stack's servers (Cassandra, Kafka, MinIO), this process (the counter's
    stand-in) and the load generator it starts run on the others meanwhile, and the stack's
    servers get back the CPUs they had. On a 2-core machine that leaves one core to
    Cassandra, Kafka, the stand-in and vegeta together, so the load generator's own delays
    enter the latencies at 2,000/s (docs/benchmarks.md)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not own or len(cpus) <= workers:
        yield None
        return
    mine, others = set(cpus[-workers:]), set(cpus[:-workers])
    from infra.stack import status

    pids = [entry.pid for entry in status(settings) if entry.pid is not None] + [os.getpid()]
    saved = {}
    for pid in pids:
        for thread in _threads(pid):
            with contextlib.suppress(OSError):
                saved[thread] = os.sched_getaffinity(thread)
                os.sched_setaffinity(thread, others)
    try:
        yield mine
    finally:
        for pid in pids:
            for thread in _threads(pid):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(thread, saved.get(thread, set(cpus)))


def _threads(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(thread) for thread in os.listdir(f"/proc/{pid}/task")]
    return []


def start_server(command: list[str], env: dict, port: int, log: Path, cpus: set[int] | None = None) -> subprocess.Popen:
    """Starts a server (on ``cpus`` only, if given) and waits until /healthz answers 200."""
    with log.open("w") as log_file:
        server = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                  preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"{command[1]} exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"{command[1]} did not become healthy: {log.read_text()[-2000:]}")


def attack(vegeta: Path, targets: Path, rate: int, seconds: float) -> list[dict]:
    """vegeta at a constant rate; every result (latency in ns, status code, error)."""
    attack_run = subprocess.Popen(
        [str(vegeta), "attack", f"-targets={targets}", f"-rate={rate}/s", f"-duration={seconds}s",
         "-timeout=10s", "-workers=64", "-connections=256"], stdout=subprocess.PIPE)
    encoded = subprocess.Popen([str(vegeta), "encode", "--to", "json"], stdin=attack_run.stdout,
                               stdout=subprocess.PIPE, text=True)
    attack_run.stdout.close()
    results = [json.loads(line) for line in encoded.stdout if line.strip()]
    attack_run.wait()
    encoded.wait()
    return results


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its descendants (the workers)."""
    parent = psutil.Process(pid)
    total = 0.0
    for process in (parent, *parent.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def raw_reads(settings: Settings, targets: list[Target], rate: int, seconds: float) -> list[tuple]:
    """The same data read straight from Cassandra, open loop at ``rate``, with the profile
    serving uses (tuple rows): each request's partitions sent together, its latency that
    of the slowest; (kind, latency in s or None on error) per request."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    final_day = bench_days()[0]
    session = connect(settings)
    profile = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
    speed = prepare_minute_range_read(session)
    batch = prepare_version_minute_range_read(session)
    results, done, lock = [], threading.Semaphore(0), threading.Lock()
    total = int(rate * seconds)

    def reads_of(target: Target) -> list[tuple]:
        return [(batch, (target.video_id, day, 1, first, end)) if day == final_day
                else (speed, (target.video_id, day, first, end)) for day, first, end in target.days()]

    planned = [reads_of(t) for t in targets]

    def settle(_outcome, request: dict, ok: bool) -> None:
        with lock:
            request["left"] -= 1
            request["ok"] &= ok
            if request["left"]:
                return
        results.append((request["kind"], time.perf_counter() - request["at"] if request["ok"] else None))
        done.release()

    started = time.perf_counter()
    for number in range(total):
        target = targets[number % len(targets)]
        scheduled = started + number / rate
        pause = scheduled - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        reads = planned[number % len(targets)]
        request = {"kind": target.kind, "at": scheduled, "left": len(reads), "ok": True}
        for statement, values in reads:
            future = session.execute_async(statement, values, execution_profile=profile)
            future.add_callbacks(settle, settle, callback_args=(request, True), errback_args=(request, False))
    deadline = time.perf_counter() + 60
    answered = sum(done.acquire(timeout=max(0.0, deadline - time.perf_counter())) for _ in range(total))
    session.cluster.shutdown()
    if answered < total:
        print(f"raw reads: {total - answered:,} of {total:,} requests unanswered a minute after the last"
              " was sent (counted as errors)", file=sys.stderr)
    return results + [(targets[0].kind, None)] * (total - answered)
