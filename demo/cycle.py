"""``viewcount demo``: the whole cycle on generated data, with a line per step.

stack up -> a billing catalog -> a past day of events (hot videos, duplicates, late and
malformed records) with its oracle -> the speed-layer counter and archiver side by side
-> the HTTP API answers from the speed table (provisional) -> the nightly DAG for that day
(archive sensor, quality suites, batch, reconciliation, report, gate, promotion) -> the API
answers again, now final from the promoted batch -> the reconciliation summary, and the
report and Data Docs copied next to the run for opening in a browser.

The demo keeps to its own keyspace, topics, bucket and checkpoints, and resets them first,
so it is repeatable and never mixes with other data on the same stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from storage.reconciliations import money_text
from settings.environment import ServingKnobs, Settings
from settings.errors import UserError

log = logging.getLogger(__name__)

STEPS = 8
# The demo's own keyspace, topics and bucket (its settings, and its commands' environment).
DEMO_PLACES = {"keyspace": "viewcount_demo", "views_topic": "demo.views", "dlq_topic": "demo.views.dlq",
               "cells_topic": "demo.views.cells", "s3_bucket": "viewcount-demo"}
DEMO_VIDEOS = 2_000
BILLABLE_SHARE = 0.3  # the hottest 30% of videos are billable in the demo catalog
SHOWN_VIDEOS = 4


def _latest_closed_day(now: dt.datetime | None = None) -> dt.date:
    """The newest UTC day whose batch cutoff (next midnight + the default grace) has passed."""
    from counting.window import latest_closed_day

    return latest_closed_day(now or dt.datetime.now(dt.timezone.utc))


def demo_settings(settings: Settings, day: dt.date, today: dt.date) -> tuple[Settings, dict[str, str]]:
    """The demo's settings, and the variables that give its commands the same: its own
    keyspace, topics and bucket. The demo's topics are created afresh by ``stack init``,
    refusing records stamped further back than the restatement horizon (storage.topics): an
    older ``--day`` than the horizon reaches gets a horizon that reaches it, for the demo's
    own topics and nightly."""
    variables = Settings.variables()
    environment = {variables[name]: value for name, value in DEMO_PLACES.items()}
    changes = dict(DEMO_PLACES)
    days_back = (today - day).days
    if settings.restatement_days < days_back:
        environment["VIEWCOUNT_RESTATEMENT_DAYS"] = str(days_back)
        changes["topics"] = settings.topics.model_copy(update={"restatement_days": days_back})
    return settings.replaced(**changes), environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from counting.durations import duration_text
    from counting.window import DEFAULT_GRACE, parse_day
    from settings.errors import argument_type

    parser.add_argument("--events", type=int, default=50_000, help="events to generate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: %(default)s)")
    parser.add_argument("--day", type=argument_type(parse_day), default=_latest_closed_day(),
                        help=f"the UTC day to simulate; its cutoff (next midnight + {duration_text(DEFAULT_GRACE)}) "
                             "must have passed (default: the latest such day, %(default)s)")


class Steps:
    def __init__(self) -> None:
        self.began = time.monotonic()
        self.number = 0
        self.started = self.began

    def next(self, text: str) -> None:
        if self.number:
            self._done()
        self.number += 1
        self.started = time.monotonic()
        log.info(f"[{self.number}/{STEPS}] {text}")

    def _done(self) -> None:
        log.info(f"      done in {time.monotonic() - self.started:.1f} s")

    def finish(self) -> None:
        self._done()
        log.info(f"demo finished in {time.monotonic() - self.began:.0f} s")


def _cli(environment: dict[str, str], *argv: str) -> None:
    """A CLI command in a process of its own, under the demo's environment, its output shown."""
    status = subprocess.run([sys.executable, "-m", "viewcount.cli", *argv], env=environment).returncode
    if status != 0:
        raise UserError(f"`viewcount {' '.join(argv)}` exited with {status}")


def _together(environment: dict[str, str], logs: Path, *commands: tuple[str, ...]) -> None:
    """CLI commands as separate processes at the same time (as in production); each must succeed."""
    running = []
    for args in commands:
        job_log = logs / f"{args[0]}.log"
        running.append((args, job_log, subprocess.Popen([sys.executable, "-m", "viewcount.cli", *args], env=environment,
                                                        stdout=job_log.open("w"), stderr=subprocess.STDOUT)))
    for args, job_log, process in running:
        if process.wait() != 0:
            raise UserError(f"`viewcount {' '.join(args)}` exited with {process.returncode}; see {job_log}")
        log.info(f"      viewcount {args[0]}: {_batch_summary(job_log, counting=args[0] == 'speed')}")


# The per-batch progress line of the counter and the archiver (not of the dead-letter query).
BATCH_LINE = re.compile(r"\[(?:counter|archiver)\] batch \d+: ([\d,]+) rows in .*?late ([\d,]+), "
                        r"duplicates ([\d,]+), invalid ([\d,]+)")


def _batch_summary(log: Path, counting: bool) -> str:
    """Micro-batches and what they read, summed from a streaming job's per-batch lines."""
    batches = [[int(figure.replace(",", "")) for figure in found.groups()]
               for found in BATCH_LINE.finditer(log.read_text(errors="replace"))]
    rows, late, duplicates, invalid = (sum(column) for column in zip(*batches)) if batches else (0, 0, 0, 0)
    counted = f", {duplicates:,} duplicates dropped, {late:,} late, {invalid:,} invalid" if counting else ""
    return f"{len(batches)} micro-batches, {rows:,} records read{counted} (log: {log})"


def _reset_demo_data(settings: Settings) -> None:
    import shutil

    from confluent_kafka.admin import AdminClient

    from storage.cassandra import drop_keyspace
    from storage.kafka_config import client_config
    from storage.s3 import delete_prefix, ensure_bucket

    admin = AdminClient(client_config(settings))
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [t for t in (settings.views_topic, settings.dlq_topic, settings.cells_topic) if t in existing]
    for future in admin.delete_topics(doomed, operation_timeout=30).values() if doomed else []:
        future.result()
    drop_keyspace(settings)
    if not ensure_bucket(settings):
        delete_prefix(settings)
    shutil.rmtree(settings.run_dir / "demo", ignore_errors=True)
    # Topic deletion completes asynchronously: until none of them is listed any more.
    Retrying(retry=retry_if_result(bool), wait=wait_fixed(0.5))(
        lambda: doomed and set(doomed) & set(admin.list_topics(timeout=10).topics))


def write_demo_catalog(path: Path, videos: int) -> int:
    """The generator's videos as a billing catalog: the hottest share billable, at 2.50 USD per 1,000."""
    from producer.catalog import video_ids

    path.parent.mkdir(parents=True, exist_ok=True)
    billable = int(videos * BILLABLE_SHARE)
    with path.open("w") as out:
        out.write("video_id,billable,rate_per_1000,currency,title\n")
        for rank, video in enumerate(video_ids(videos)):
            paid = rank < billable
            out.write(f"{video},{str(paid).lower()},{'2.50' if paid else '0'},USD,Demo video {rank + 1}\n")
    return billable


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Api:
    """``viewcount serve`` in the background on a free loopback port."""

    def __init__(self, log: Path, environment: dict[str, str]) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "viewcount.cli", "serve", "--port", str(self.port)],
                                        env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)

        def exited(_) -> bool:
            return self.process.poll() is not None

        try:
            Retrying(retry=retry_if_exception_type(OSError), stop=stop_after_delay(60) | exited,
                     wait=wait_fixed(0.5))(self.get, "/healthz")
        except RetryError:
            self.stop()
            raise UserError(f"the API did not come up; see {log}") from None

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            return json.load(response)

    def views(self, video: str, day: dt.date) -> dict:
        start = f"{day.isoformat()}T00:00:00Z"
        end = f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00Z"
        return self.get(f"/v1/videos/{video}/views?start={start}&end={end}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _oracle_day_totals(oracle_dir: Path, day: dt.date) -> Counter:
    from oracle import counts as oracle

    start = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp() * 1000)
    totals: Counter = Counter()
    for (video, minute), views in oracle.read_counts(oracle_dir / "counts.parquet").items():
        if start <= minute < start + 86_400_000:
            totals[video] += views
    return totals


def _show_answers(api: Api, videos: list[str], day: dt.date, oracle_totals: Counter) -> None:
    for video in videos:
        answer = api.views(video, day)
        kind = "final" if answer["final"] else f"provisional {answer['provisional_days']}"
        log.info(f"      GET /v1/videos/{video}/views ({day}): {answer['views']:>6,} views, {kind}; "
                 f"oracle {oracle_totals[video]:,}")


def _copy_reports(settings: Settings, day: dt.date, report_uri: str, folder: Path) -> list[Path]:
    """The HTML report and the Data Docs index, copied from S3 for opening locally."""
    from storage.s3 import client, split_uri

    s3 = client(settings)
    bucket, key = split_uri(report_uri)
    copies = [(key, folder / "report.html")]
    docs_prefix = key.rsplit("/", 1)[0] + "/data_docs/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=docs_prefix).get("Contents", [])
    copies += [(item["Key"], folder / "data_docs" / item["Key"][len(docs_prefix):]) for item in listed]
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, source, str(target))
    return [target for _, target in copies]


def run(args: argparse.Namespace) -> int:
    if args.events <= 0:
        raise UserError("--events must be positive")
    from counting.window import BatchWindow

    if not BatchWindow(args.day).is_over(dt.datetime.now(dt.timezone.utc)):
        raise UserError(f"--day {args.day}: its cutoff has not passed yet; pick {_latest_closed_day()} or earlier")
    settings, places = demo_settings(Settings.from_env(), args.day, dt.datetime.now(dt.timezone.utc).date())
    # The demo's streaming jobs each run over 50,000 records and stop: compiled code in a
    # third of the time pays, the optimizing compiler never does (speed step 58 s -> 37 s).
    # A VIEWCOUNT_QUICK_JIT of the caller's own wins; the demo's places always do.
    environment = {"VIEWCOUNT_QUICK_JIT": "all", **os.environ, **places}
    folder = settings.run_dir / "demo"
    oracle_dir = folder / "oracle"
    steps = Steps()

    steps.next("stack up: Kafka, Cassandra, MinIO on 127.0.0.1 (demo data reset), billing catalog")
    _cli(environment, "stack", "up")
    _reset_demo_data(settings)
    _cli(environment, "stack", "init")
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    catalog = folder / "catalog.csv"
    billable = write_demo_catalog(catalog, DEMO_VIDEOS)
    _cli(environment, "catalog", "load", str(catalog))
    log.info(f"      catalog: {DEMO_VIDEOS:,} videos, the {billable:,} hottest billable ({catalog})")

    steps.next(f"produce {args.events:,} events of {args.day} (seed {args.seed}): hot videos, duplicates, "
               "late and malformed records")
    _cli(environment, "produce", "--events", str(args.events), "--seed", str(args.seed), "--day", args.day.isoformat(),
         "--videos", str(DEMO_VIDEOS), "--oracle", str(oracle_dir))

    steps.next("speed layer: the counter and the archiver side by side over what Kafka holds")
    checkpoints = folder / "checkpoints"
    # Micro-batches of a fifth of the day each: the watermark advances between them, so the
    # counter drops the records that arrive too late, as it does in production. The 1%
    # more covers Kafka's split of a bound over partitions: no sixth batch of a few records.
    per_batch = str(max(1_000, args.events // 5 + args.events // 100))
    _together(environment, logs,
              ("speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(checkpoints / "counter"),
               "--max-offsets-per-trigger", per_batch),
              ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(checkpoints / "archiver")))
    _show_landed(settings)

    steps.next("serving before the nightly run: the day is provisional (speed table)")
    oracle_totals = _oracle_day_totals(oracle_dir, args.day)
    shown = [video for video, _ in oracle_totals.most_common(SHOWN_VIDEOS)]
    api = Api(logs / "serve.log", environment)
    try:
        _show_answers(api, shown, args.day, oracle_totals)

        steps.next(f"the nightly DAG for {args.day}: sensor, quality, batch, reconcile, report, gate, promote")
        _cli(environment, "nightly", "--date", args.day.isoformat())

        steps.next("serving after promotion: the day is final (batch table)")
        # The API reads the promoted versions again when its copy is this old.
        time.sleep(ServingKnobs.from_env().serving_promotion_refresh_s)
        _show_answers(api, shown, args.day, oracle_totals)
    finally:
        api.stop()

    steps.next("the reconciliation summary")
    from storage.cassandra import connect
    from storage.reconciliations import read_summary

    session = connect(settings)
    try:
        summary = read_summary(session, args.day)
    finally:
        session.cluster.shutdown()
    if summary is None:
        raise UserError(f"no reconciliation stored for {args.day}")
    _show_summary(summary)

    steps.next("the report and the Data Docs")
    copies = _copy_reports(settings, args.day, summary["report_uri"], folder / "report")
    log.info(f"      report:    {summary['report_uri']}")
    log.info(f"      locally:   {copies[0]}")
    docs = [path for path in copies if path.name == "index.html" and path.parent.name == "data_docs"]
    if docs:
        log.info(f"      data docs: {docs[0]} ({len(copies) - 1} files)")
    steps.finish()
    return 0


def _show_landed(settings: Settings) -> None:
    from storage.topics import dead_letter_reasons, topic_end_offsets

    offsets = topic_end_offsets(settings, settings.views_topic)
    reasons = dead_letter_reasons(settings)
    log.info(f"      Kafka '{settings.views_topic}': {sum(offsets.values()):,} records; '{settings.dlq_topic}': "
             f"{sum(reasons.values()):,} invalid (" + ", ".join(f"{r} {n}" for r, n in reasons.most_common()) + ")")


def _show_summary(summary: dict) -> None:
    causes = ", ".join(f"{cause} {count:,}" for cause, count in summary["causes"].items() if count) or "none"
    lines = [
        f"status {summary['status']}: {summary['cells_compared']:,} cells compared, "
        f"{summary['cells_divergent']:,} divergent ({causes})",
        f"views: speed {summary['views_speed']:,}, batch {summary['views_batch']:,}, "
        f"|delta| {summary['abs_delta_views']:,}",
        f"billing: {summary['billing_cells_divergent']:,} billable cells divergent, "
        f"money at risk {money_text(summary['money_at_risk'])}",
        f"gate: {summary.get('gate', {}).get('reason', '-')}",
    ]
    for line in lines:
        log.info(f"      {line}")
