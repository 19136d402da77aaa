"""Speed-layer counter: throughput, lag and freshness, beside Kafka's own consumer.

In one run, each on fresh topics:
1. Start-up: ``viewcount speed --available-now`` and ``viewcount archive --available-now``
   on an empty topic (JVM, session, first batch planning, exit).
2. Catch-up throughput: N records of one realistic day are produced first; Kafka's
   ConsumerPerformance reads them (the reference rate), then ``viewcount speed
   --available-now`` counts the same records and ``viewcount archive --available-now``
   archives them, one after the other; events/s of each net of its start-up, and the
   ratios to Kafka's consumer. The engine's floor runs over the same records as well: the
   plainest Structured Streaming job for the same work (``floor_job``: read the topic,
   parse the JSON value, keep records with an event id, a video id and a parseable event
   time, drop duplicate event ids within a 10-minute watermark, count per video and
   1-minute window, Spark's ``noop`` sink; the same session settings: local[2], 2 shuffle
   partitions, RocksDB state, the same batch bound), net of its own start-up on the empty
   topic; the counter's rate over the floor's is issue 30's measure (goal >= 0.7). Then
   the counter again over the same day with one video taking 20% of all views
   (``--hot-share 0.2``): its rate against the Zipf day's.
3. Live (skipped with ``--seconds 0``): the counter, the archiver and the HTTP API run
   continuously while ``viewcount produce`` sends events at a fixed rate for a fixed time;
   the lag (records behind the end of the topic) is sampled from the counter's /metrics
   every 5 s, and probe events with event_time = now, one a second on a video of their
   own, measure freshness: sent -> counted in an answer of the HTTP API. Freshness is
   measured under load and at idle (20 s before the load and 20 s after the drain). The
   probes in flight are followed together, one sent a second however slow. Each probe's
   cell is also looked for on the cell feed: the record's timestamp (when the counter
   published it, after its Cassandra write and before its batch commit) -> counted in an
   API answer is the serving layer's part of freshness, an upper bound of commit ->
   visible (issue 28's goal: p99 <= 1 s).
   ``--live-only`` skips 1. and 2.

After the counter's catch-up, its counts must agree with the produced day's oracle: no
cell above it, and no more views missing than the day's late events (exit status 1
otherwise). ``make test`` runs ``--quick --backlog 2000`` (the counter's catch-up only,
start-up included; tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/speed_throughput.py --backlog 1000000 --rate 10000 --seconds 300

Goals (issue 13): counter catch-up >= 50,000 events/s net and >= 0.10 of Kafka's consumer,
start-up <= 15 s, archiver >= 100,000 events/s net, the hot-key day >= 0.80 of the Zipf
day's rate; live at 10,000 events/s the lag does
not grow, freshness p50 <= 2 s and p99 <= 5 s.
Goals (issue 30): the counter's catch-up >= 0.7 of the floor's rate in the same run,
start-up <= 11 s; live at 10,000 events/s freshness p50 <= 1.5 s and p99 <= 3 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from storage.cassandra import apply_migrations, drop_keyspace
from settings.environment import Settings
from storage.s3 import delete_prefix
from storage.topics import delete_topics, ensure_topics

METRICS_PORT = 9118
API_PORT = 18118


def consumer_performance(settings: Settings, topic: str, messages: int) -> float:
    from infra.artifacts import KAFKA

    out = subprocess.run(
        ["java", "-cp", KAFKA.classpath(settings.cache_dir), "org.apache.kafka.tools.ConsumerPerformance",
         "--bootstrap-server", settings.kafka_bootstrap, "--topic", topic, "--messages", str(messages),
         "--group", f"bench-{uuid.uuid4().hex[:8]}", "--timeout", "60000"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()
    header, values = out[0].split(","), out[-1].split(",")
    row = dict(zip((h.strip() for h in header), (v.strip() for v in values)))
    return float(row["nMsg.sec"])


def lag_from_metrics() -> int | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    lags = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("viewcount_speed_lag_records{") and 'job="counter"' in line]
    return int(sum(lags)) if lags else None


def probe_freshness(settings: Settings, topic: str, stop: threading.Event, results: list[float],
                    served: list[float] | None = None) -> None:
    """Send one probe view a second, each on a video of its own, with event_time = now, and
    follow every probe in flight (so a slow one does not hold the next one back): poll the
    HTTP API until its minute counts it and record the delay (send -> visible to a client).
    The API is asked for the probe's minute before it is sent, so the worker holds the
    partition and can learn of the view only from the cell feed. With ``served``, read the
    cell feed too and record there the delay from the record of the probe's cell (its
    timestamp: when the counter published it, before it committed the batch) -> visible
    to a client: an upper bound of commit -> visible."""
    import datetime as dt

    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 0})
    feed = None
    if served is not None:
        feed = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"probe-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        partitions = feed.list_topics(settings.cells_topic, timeout=10).topics[settings.cells_topic].partitions
        feed.assign([TopicPartition(settings.cells_topic, number, feed.get_watermark_offsets(
            TopicPartition(settings.cells_topic, number), timeout=10)[1]) for number in partitions])

    def views(video: str, minute: dt.datetime) -> int | None:
        query = urllib.parse.urlencode({"start": minute.isoformat(),
                                        "end": (minute + dt.timedelta(minutes=1)).isoformat()})
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{API_PORT}/v1/videos/{video}/views?{query}",
                                        timeout=2) as answer:
                return json.load(answer)["views"]
        except OSError:
            return None

    in_flight: dict[bytes, dict] = {}  # the probe cell's key -> its probe
    next_probe = time.monotonic()
    while not stop.is_set() or (in_flight and time.monotonic() < next_probe + 60):
        now = dt.datetime.now(dt.timezone.utc)
        if not stop.is_set() and time.monotonic() >= next_probe:
            next_probe += 1.0
            video, minute = f"probe-{uuid.uuid4().hex[:8]}", now.replace(second=0, microsecond=0)
            before = views(video, minute)
            if before is not None:  # else the API is not answering yet
                event = {"event_id": uuid.uuid4().hex, "video_id": video, "event_time": int(now.timestamp() * 1000)}
                producer.produce(topic, key=video.encode(), value=json.dumps(event).encode())
                producer.flush()
                key = f"{video}@{int(minute.timestamp()) * 1000}".encode()
                in_flight[key] = {"video": video, "minute": minute, "before": before,
                                  "sent": time.monotonic(), "published": None, "asked": 0.0}
        for record in feed.consume(100_000, 0) if feed is not None else ():
            probe = in_flight.get(record.key()) if record.error() is None else None
            if probe is not None and probe["published"] is None:
                probe["published"] = record.timestamp()[1] / 1000
        for key, probe in list(in_flight.items()):
            # Asked every 10 ms once its cell is on the feed, every 100 ms before.
            pause = 0.01 if probe["published"] is not None or feed is None else 0.1
            if time.monotonic() - probe["asked"] < pause:
                continue
            probe["asked"] = time.monotonic()
            if (views(probe["video"], probe["minute"]) or 0) >= probe["before"] + 1:
                answered, answered_wall = time.monotonic(), time.time()
                results.append(answered - probe["sent"])
                if served is not None and probe["published"] is not None:
                    served.append(answered_wall - probe["published"])
                del in_flight[key]
            elif time.monotonic() - probe["sent"] > 60:
                del in_flight[key]  # lost: counted by its absence
        time.sleep(0.005)
    if feed is not None:
        feed.close()


def probed(settings: Settings, topic: str, seconds: float) -> list[float]:
    """Freshness of probes sent for ``seconds`` while nothing else is produced."""
    stop, results = threading.Event(), []
    prober = threading.Thread(target=probe_freshness, args=(settings, topic, stop, results))
    prober.start()
    time.sleep(seconds)
    stop.set()
    prober.join()
    return results


def timed_job(command: list[str], env: dict, log: Path) -> float:
    """Seconds one --available-now job took, start to exit."""
    started = time.monotonic()
    with open(log, "w") as stderr:
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    return time.monotonic() - started


def available_now(job: str, work: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "viewcount.cli", job, "--available-now", "--metrics-port", "0",
            "--checkpoint", str(work / f"{name}-checkpoint")]


def floor_job(settings: Settings, topic: str, checkpoint: str) -> None:
    """The engine's floor for the counter's work (run in a process of its own, ``--floor-of``):
    what a Spark engineer would write first, into the ``noop`` sink, available-now."""
    from pyspark.sql import functions as F

    from spark_runtime.session import build_session
    from speed_layer.kafka_source import SourceOptions
    from storage.kafka_config import spark_reader_options

    spark = build_session("bench-speed-floor", settings, master="local[2]")
    spark.conf.set("spark.sql.shuffle.partitions", "2")
    records = (spark.readStream.format("kafka").options(**spark_reader_options(settings))
               .option("subscribe", topic).option("startingOffsets", "earliest")
               .option("maxOffsetsPerTrigger", str(SourceOptions.max_offsets_per_trigger)).load())
    events = records.select(F.from_json(F.col("value").cast("string"),
                                        "event_id string, video_id string, event_time string").alias("e")).select("e.*")
    # event_time: epoch milliseconds (a JSON number, read as its digits) or an RFC 3339 text.
    millis = F.expr("try_cast(event_time AS BIGINT)")
    event_time = F.when(millis.isNotNull(), F.timestamp_millis(millis)).otherwise(F.try_to_timestamp("event_time"))
    counts = (events.withColumn("event_time", event_time)
              .where(F.col("event_id").isNotNull() & F.col("video_id").isNotNull() & F.col("event_time").isNotNull())
              .withWatermark("event_time", "10 minutes")
              .dropDuplicatesWithinWatermark(["event_id"])
              .groupBy("video_id", F.window("event_time", "1 minute")).count())
    (counts.writeStream.format("noop").outputMode("update").trigger(availableNow=True)
     .option("checkpointLocation", checkpoint).start().awaitTermination())
    spark.stop()


def floor_command(topic: str, work: Path, name: str) -> list[str]:
    return [sys.executable, __file__, "--floor-of", topic, "--floor-checkpoint", str(work / f"{name}-checkpoint")]


def counter_agrees(settings: Settings, oracle_dir: Path) -> bool:
    """The speed table against the oracle of the produced day (``viewcount produce``'s
    counts.parquet): no cell above the oracle's, and the views it misses no more than the
    late events the day holds (the counter drops those behind its watermark)."""
    from oracle.counts import read_counts
    from storage.minute_counts import speed_counts_for

    expected = read_counts(oracle_dir / "counts.parquet")
    late = json.loads((oracle_dir / "summary.json").read_text())["late"]["events"]
    videos = {video for video, _ in expected}
    counted: dict[tuple[str, int], int] = {}
    for day in {dt.datetime.fromtimestamp(minute_ms / 1000, dt.timezone.utc).date() for _, minute_ms in expected}:
        counted.update(speed_counts_for(settings, videos, day))
    over = [cell for cell, views in counted.items() if views > expected.get(cell, 0)]
    missing = sum(expected.values()) - sum(counted.values())
    ok = not over and 0 <= missing <= late
    print(f"counter against the oracle: {sum(counted.values()):,} views counted of {sum(expected.values()):,}, "
          f"{missing:,} missing (the day holds {late:,} late events), {len(over):,} cells above the oracle's: "
          + ("agree" if ok else "DISAGREE"), flush=True)
    return ok


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def clean_up(settings: Settings, topics: list[str]) -> None:
    """The run's keyspace, topics and archive files go; its logs stay in /tmp."""
    drop_keyspace(settings)
    delete_topics(settings, topics)
    for topic in topics:
        delete_prefix(settings, f"archive/{topic}/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1_000_000, help="records for the catch-up run")
    parser.add_argument("--rate", type=int, default=5_000, help="events/s produced in the live run")
    parser.add_argument("--seconds", type=int, default=300, help="how long the live run produces")
    parser.add_argument("--live-only", action="store_true", help="only the live run (3.)")
    parser.add_argument("--floor-of", metavar="TOPIC", help=argparse.SUPPRESS)  # floor_job, in its own process
    parser.add_argument("--floor-checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="only the counter's catch-up, checked against the oracle (no start-up on an "
                             "empty topic: rates include it; no archiver, no hot-key day, no live run): "
                             "make test's smoke run")
    args = parser.parse_args()

    settings = Settings.from_env()
    if args.floor_of:
        floor_job(settings, args.floor_of, args.floor_checkpoint)
        return 0
    viewcount = [sys.executable, "-m", "viewcount.cli"]
    tag = uuid.uuid4().hex[:8]
    work = Path(f"/tmp/bench-speed-{tag}")
    work.mkdir(parents=True)

    # A keyspace of its own: generated video ids are the same in every run.
    settings = settings.replaced(keyspace=f"bench_{tag}")
    apply_migrations(settings)
    topics: list[str] = []

    def topic_env(topic: str) -> dict:
        cells = settings.replaced(cells_topic=f"{topic}.cells")
        ensure_topics(cells, {topic: 6, f"{topic}.dlq": 3, cells.cells_topic: cells.topics.cells_partitions})
        topics.extend([topic, f"{topic}.dlq", cells.cells_topic])
        return {**os.environ, "VIEWCOUNT_KEYSPACE": settings.keyspace,
                "VIEWCOUNT_VIEWS_TOPIC": topic, "VIEWCOUNT_DLQ_TOPIC": f"{topic}.dlq",
                "VIEWCOUNT_CELLS_TOPIC": cells.cells_topic}

    if args.live_only:
        return live(args, settings, viewcount, work, topic_env, topics, tag)

    jobs = ("speed",) if args.quick else ("speed", "archive")
    startup = {job: 0.0 for job in (*jobs, "floor")}  # --quick: not measured, the rates below include it
    if not args.quick:
        empty_topic = f"bench-empty-{tag}"
        empty = topic_env(empty_topic)
        startup = {job: timed_job(available_now(job, work, f"empty-{job}"), empty, work / f"empty-{job}.log")
                   for job in jobs}
        startup["floor"] = timed_job(floor_command(empty_topic, work, "empty-floor"), empty, work / "empty-floor.log")
    for job, seconds in startup.items():
        print(f"{job} start-up on an empty topic: {seconds:.1f} s (goal <= 15 s)", flush=True)

    backlog_topic = f"bench-backlog-{tag}"
    env = topic_env(backlog_topic)
    subprocess.run([*viewcount, "produce", "--events", str(args.backlog), "--seed", "1",
                    "--day", (dt.date.today() - dt.timedelta(days=1)).isoformat(),
                    "--oracle", str(work / "backlog-oracle")],
                   check=True, env=env, stderr=subprocess.DEVNULL)
    kafka_rate = consumer_performance(settings, backlog_topic, args.backlog)
    print(f"Kafka ConsumerPerformance: {kafka_rate:,.0f} records/s", flush=True)
    goals = {"speed": 50_000, "archive": 100_000}
    net_rates, agree = {}, True
    for job in jobs:
        seconds = timed_job(available_now(job, work, f"backlog-{job}"), env, work / f"backlog-{job}.log")
        net = net_rates[job] = args.backlog / max(seconds - startup[job], 0.001)
        print("".join(line for line in open(work / f"backlog-{job}.log") if "] batch " in line), flush=True)
        print(f"{job} catch-up: {seconds:.1f} s for {args.backlog:,} records; "
              f"{'start-up included (--quick)' if args.quick else 'net of its start-up'} "
              f"{net:,.0f} records/s (goal >= {goals[job]:,}/s), ratio to Kafka's consumer "
              f"{net / kafka_rate:.3f}; with start-up {args.backlog / seconds:,.0f} records/s", flush=True)
        if job == "speed":  # before the hot-key day writes the same cells
            agree = counter_agrees(settings, work / "backlog-oracle")
    seconds = timed_job(floor_command(backlog_topic, work, "backlog-floor"), env, work / "backlog-floor.log")
    floor = args.backlog / max(seconds - startup["floor"], 0.001)
    print(f"Spark floor (noop sink) catch-up: {seconds:.1f} s; "
          f"{'start-up included (--quick)' if args.quick else 'net of its start-up'} {floor:,.0f} records/s", flush=True)
    print(f"counter / floor: {net_rates['speed'] / floor:.2f}x the floor's rate (goal >= 0.7)", flush=True)
    status = 0 if agree else 1
    if args.quick:
        clean_up(settings, topics)
        return status

    # The same day with one viral video taking 20% of the views (its key: one partition).
    env = topic_env(f"bench-hot-{tag}")
    subprocess.run([*viewcount, "produce", "--events", str(args.backlog), "--seed", "1", "--hot-share", "0.2",
                    "--day", (dt.date.today() - dt.timedelta(days=1)).isoformat(),
                    "--oracle", str(work / "hot-oracle")],
                   check=True, env=env, stderr=subprocess.DEVNULL)
    seconds = timed_job(available_now("speed", work, "hot-speed"), env, work / "hot-speed.log")
    hot = args.backlog / max(seconds - startup["speed"], 0.001)
    print(f"speed catch-up with one video at 20% of views: {seconds:.1f} s; net {hot:,.0f} records/s, "
          f"{hot / net_rates['speed']:.2f} of the Zipf day's (goal >= 0.80)", flush=True)
    if args.seconds == 0:
        clean_up(settings, topics)
        return status
    return max(status, live(args, settings, viewcount, work, topic_env, topics, tag))


def live(args, settings: Settings, viewcount: list[str], work: Path, topic_env, topics: list[str], tag: str) -> int:
    """3.: the counter, the archiver and the API running while events arrive at a fixed rate."""
    topic = f"bench-live-{tag}"
    env = topic_env(topic)
    settings = settings.replaced(cells_topic=env["VIEWCOUNT_CELLS_TOPIC"])  # the probes read the run's feed
    jobs = [subprocess.Popen([*viewcount, "speed", "--checkpoint", str(work / "checkpoint"),
                              "--starting-offsets", "latest", "--metrics-port", str(METRICS_PORT)],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(work / "counter.log", "w")),
            subprocess.Popen([*viewcount, "archive", "--checkpoint", str(work / "archive-checkpoint"),
                              "--starting-offsets", "latest", "--metrics-port", "0"],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(work / "archiver.log", "w")),
            subprocess.Popen([*viewcount, "serve", "--port", str(API_PORT)],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "w"))]
    try:
        while lag_from_metrics() is None:
            time.sleep(1)
            if any(job.poll() is not None for job in jobs):
                raise SystemExit(f"a job exited; see the logs in {work}")
        idle_before = probed(settings, topic, 20)
        stop, freshness, served = threading.Event(), [], []
        prober = threading.Thread(target=probe_freshness, args=(settings, topic, stop, freshness, served))
        prober.start()
        producer = subprocess.Popen([*viewcount, "produce", "--events", str(args.rate * args.seconds),
                                     "--rate", str(args.rate), "--seed", "2", "--oracle", str(work / "oracle")],
                                    env=env, stderr=subprocess.DEVNULL)
        started, lags = time.monotonic(), []
        while producer.poll() is None:
            time.sleep(5)
            lags.append((round(time.monotonic() - started), lag_from_metrics()))
            print(f"t={lags[-1][0]:>4} s lag={lags[-1][1]}", flush=True)
        produce_seconds = time.monotonic() - started
        stop.set()  # the probes' own records would keep the lag above 0
        prober.join()
        while (lag_from_metrics() or 0) > 0 and time.monotonic() - started < produce_seconds + 600:
            time.sleep(2)
        drained = time.monotonic() - started
        idle_after = probed(settings, topic, 20)
    finally:
        for job in jobs:
            job.terminate()
        for job in jobs:
            job.wait(timeout=60)
    clean_up(settings, topics)

    events = args.rate * args.seconds
    print(f"live: produced {events:,} events at {args.rate:,}/s in {produce_seconds:.0f} s; "
          f"lag back to 0 after {drained:.0f} s; max lag {max((lag or 0) for _, lag in lags):,}")
    print(f"freshness under load (event sent -> counted through the HTTP API), {len(freshness)} probes: "
          f"p50 {percentile(freshness, 0.5):.2f} s, p99 {percentile(freshness, 0.99):.2f} s "
          f"(goals p50 <= 2 s, p99 <= 5 s)")
    print(f"freshness of the serving layer under load (the probe's cell published to the cell feed, before the "
          f"counter's commit -> counted through the HTTP API), {len(served)} probes: "
          f"p50 {percentile(served, 0.5):.3f} s, p99 {percentile(served, 0.99):.3f} s (goal p99 <= 1 s)")
    idle = idle_before + idle_after
    print(f"freshness at idle, {len(idle)} probes: p50 {percentile(idle, 0.5):.2f} s, "
          f"p99 {percentile(idle, 0.99):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
