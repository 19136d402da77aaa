"""Serving latency under a constant open-loop load, beside the raw Cassandra read.

In one run, against the running stack, in a keyspace of its own (``viewcount_bench``):
1. Seeds speed rows for today (provisional) and a promoted batch version for yesterday
   (final), ``--videos`` videos with per-minute rows on both days.
2. Starts ``viewcount serve`` (uvicorn, a subprocess) and drives ``--rate`` requests/s for
   ``--seconds`` with vegeta (open loop: requests go out on schedule whether or not earlier
   ones were answered), after a warm-up. The mix: half ask one hour of today (speed rows),
   half one hour of yesterday (the promoted version, whose partition is cached after its
   first read).
3. Reads the same rows straight from Cassandra at the same rate, open loop, with the same
   driver and a prepared statement (no HTTP, no promotion row, no cache).
Prints p50/p99/p99.9 and errors of both and the ratio (targets: API p99 <= 5 ms and
<= 2x the raw read).

    .venv/bin/python bench/serving_latency.py --seconds 120 --rate 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from cassandra.concurrent import execute_concurrent_with_args

from storage.cassandra import apply_migrations, connect
from storage.minute_counts import MinuteCount, upsert_minute_counts
from storage.settings import Settings

VEGETA = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"
KEYSPACE = "viewcount_bench"


@dataclass(frozen=True)
class Target:
    video_id: str
    day: dt.date
    start: dt.datetime
    end: dt.datetime
    final: bool

    def path(self) -> str:
        return (f"/v1/videos/{self.video_id}/views?start={self.start:%Y-%m-%dT%H:%M:%SZ}"
                f"&end={self.end:%Y-%m-%dT%H:%M:%SZ}")


def vegeta_binary(settings: Settings) -> Path:
    """vegeta, built once with ``go install`` at a pinned version into the cache dir."""
    bin_dir = settings.cache_dir / f"vegeta-{VEGETA_VERSION}"
    binary = bin_dir / "vegeta"
    if not binary.exists():
        print(f"building vegeta {VEGETA_VERSION} into {bin_dir} ...", file=sys.stderr)
        subprocess.run(["go", "install", f"{VEGETA}@{VEGETA_VERSION}"], check=True,
                       env={**os.environ, "GOBIN": str(bin_dir)})
    return binary


def seed(settings: Settings, videos: int, minutes: int, write: bool = True) -> list[Target]:
    """Rows for today (speed) and yesterday (batch version 1, promoted); the targets."""
    rng = random.Random(1)
    today = dt.datetime.now(dt.timezone.utc).date()
    yesterday = today - dt.timedelta(days=1)
    midnight = {day: dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc) for day in (today, yesterday)}
    session = connect(settings)
    insert_batch = session.prepare(
        "INSERT INTO batch_minute_views (video_id, day, version, minute, views) VALUES (?, ?, ?, ?, ?)")
    speed_rows, batch_rows, targets = [], [], []
    for number in range(videos):
        video_id = f"bench-{number:05d}"
        for day, rows in ((today, speed_rows), (yesterday, batch_rows)):
            for minute in rng.sample(range(1440), minutes):
                rows.append(MinuteCount(video_id, midnight[day] + dt.timedelta(minutes=minute),
                                        rng.randint(1, 1000)))
        for day, final in ((today, False), (yesterday, True)):
            hour = midnight[day] + dt.timedelta(hours=rng.randrange(24))
            targets.append(Target(video_id, day, hour, hour + dt.timedelta(hours=1), final=final))
    if not write:
        batch_rows = speed_rows = []
    upsert_minute_counts(session, speed_rows)
    execute_concurrent_with_args(
        session, insert_batch, [(r.video_id, r.day, 1, r.minute, r.views) for r in batch_rows],
        concurrency=64, raise_on_first_error=True)
    session.execute("INSERT INTO batch_promotions (day, version, promoted_at)"
                    " VALUES (%s, 1, toTimestamp(now()))", (yesterday,))
    session.cluster.shutdown()
    rng.shuffle(targets)
    print(f"seeded {videos} videos x 2 days x {minutes} minutes into {settings.keyspace}",
          file=sys.stderr)
    return targets


def start_api(settings: Settings, port: int, workers: int, log: Path) -> subprocess.Popen:
    viewcount = Path(sys.executable).parent / "viewcount"
    # One load generator on one address drives every request: the per-client rate limit is
    # off, or it would measure the limit instead of the API.
    env = {**os.environ, "VIEWCOUNT_KEYSPACE": settings.keyspace, "VIEWCOUNT_RATE_LIMIT_RPS": "0"}
    with log.open("w") as log_file:
        server = subprocess.Popen([str(viewcount), "serve", "--port", str(port), "--workers", str(workers)],
                                  env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"viewcount serve exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("viewcount serve did not become healthy")


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


def raw_reads(settings: Settings, targets: list[Target], rate: int, seconds: float) -> list[tuple]:
    """The same rows read straight from Cassandra, open loop at ``rate``, with the profile
    serving uses (tuple rows): (final, latency in s or None on error) per read."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    session = connect(settings)
    profile = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
    speed = session.prepare("SELECT minute, views FROM speed_minute_views"
                            " WHERE video_id = ? AND day = ? AND minute >= ? AND minute < ?")
    batch = session.prepare("SELECT minute, views FROM batch_minute_views WHERE video_id = ? AND day = ?"
                            " AND version = ? AND minute >= ? AND minute < ?")
    results, done = [], threading.Semaphore(0)
    total = int(rate * seconds)

    def settle(outcome, final, scheduled, ok) -> None:
        results.append((final, time.perf_counter() - scheduled if ok else None))  # atomic append
        done.release()

    started = time.perf_counter()
    for number in range(total):
        target = targets[number % len(targets)]
        scheduled = started + number / rate
        pause = scheduled - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        statement, values = ((batch, (target.video_id, target.day, 1, target.start, target.end))
                             if target.final else
                             (speed, (target.video_id, target.day, target.start, target.end)))
        future = session.execute_async(statement, values, execution_profile=profile)
        future.add_callbacks(settle, settle, callback_args=(target.final, scheduled, True),
                             errback_args=(target.final, scheduled, False))
    for _ in range(total):
        done.acquire()
    session.cluster.shutdown()
    return results


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (the workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values) or [float("nan")]

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": at(0.5), "p99": at(0.99), "p99.9": at(0.999), "max": ordered[-1] * 1000}


def report(name: str, samples: list[tuple[bool, float | None]]) -> dict[str, dict]:
    """Prints one line per kind (all, provisional, final); returns their quantiles."""
    stats = {}
    for kind, keep in (("all", lambda f: True), ("provisional hour", lambda f: not f),
                       ("final hour", lambda f: f)):
        chosen = [latency for final, latency in samples if keep(final)]
        ok = [latency for latency in chosen if latency is not None]
        stats[kind] = q = quantiles(ok)
        print(f"{name + ', ' + kind:<36}{q['p50']:>9.2f}{q['p99']:>9.2f}{q['p99.9']:>10.2f}"
              f"{q['max']:>9.1f}{len(chosen):>10,}{len(chosen) - len(ok):>8,}")
    return stats


def measure_api(args, settings: Settings, targets: list[Target]) -> tuple[list[tuple], Counter, str]:
    """vegeta against ``viewcount serve``: (final, latency or None) per request, errors, CPU."""
    base_url = f"http://127.0.0.1:{args.port}"
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    (work / "targets.txt").write_text("\n\n".join(f"GET {base_url}{t.path()}" for t in targets))
    server = start_api(settings, args.port, args.workers, work / "serve.log")
    try:
        attack(vegeta_binary(settings), work / "targets.txt", args.rate, args.warmup)
        cpu_before = cpu_seconds(server.pid)
        results = attack(vegeta_binary(settings), work / "targets.txt", args.rate, args.seconds)
        cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / max(len(results), 1)
        load = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work)
    final_of = {t.path(): t.final for t in targets}
    samples = [(final_of[r["url"].removeprefix(base_url)],
                r["latency"] / 1e9 if r["code"] == 200 and not r["error"] else None) for r in results]
    errors = Counter(r["error"].rsplit('": ', 1)[-1] or f"HTTP {r['code']}"
                     for r in results if r["code"] != 200 or r["error"])
    cpu = (f"API CPU (all workers): {cpu_ms:.2f} ms per request = {cpu_ms * args.rate / 10:.0f}% of a "
           f"core at {args.rate}/s; vegeta sent {len(results) / args.seconds:,.0f}/s; "
           f"{os.cpu_count()} cores, load average {load:.1f}")
    return samples, errors, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--rate", type=int, default=1000, help="requests per second")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of load before measuring")
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--minutes", type=int, default=300, help="minutes with views per video and day")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--workers", type=int, default=1, help="viewcount serve --workers")
    parser.add_argument("--seeded", action="store_true", help="rows already written by an earlier run")
    args = parser.parse_args(argv)

    settings = replace(Settings.from_env(), keyspace=os.environ.get("VIEWCOUNT_BENCH_KEYSPACE", KEYSPACE))
    apply_migrations(settings)
    targets = seed(settings, args.videos, args.minutes, write=not args.seeded)
    api_samples, errors, cpu = measure_api(args, settings, targets)
    raw_samples = raw_reads(settings, targets, args.rate, args.seconds)

    print(f"\nserving latency: {args.rate}/s open loop for {args.seconds:g} s, {args.workers} API "
          f"worker(s), {args.videos} videos; half one hour of today (speed), half of yesterday (batch)")
    print(f"{'':<36}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'max ms':>9}{'requests':>10}{'errors':>8}")
    api = report("API (HTTP)", api_samples)
    raw = report("raw Cassandra read", raw_samples)
    print("ratio p99 API/raw: " + ", ".join(f"{k} {api[k]['p99'] / raw[k]['p99']:.2f}" for k in api))
    print(cpu)
    for error, count in errors.most_common(5):
        print(f"API error x{count}: {error}")
    ratio = api["all"]["p99"] / raw["all"]["p99"]
    print(f"targets: p99 <= 5 ms {'met' if api['all']['p99'] <= 5 else 'MISSED'}; "
          f"p99 <= 2x raw {'met' if ratio <= 2 else 'MISSED'}; no errors {'met' if not errors else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
