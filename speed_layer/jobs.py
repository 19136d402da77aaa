"""What the counter and the archiver share: arguments, trigger, session, waiting."""

from __future__ import annotations

import argparse
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from speed_layer.kafka_source import SourceOptions
from settings.errors import UserError
from settings.environment import Settings
from spark_runtime.session import DEFAULT_MASTER
from spark_runtime.session import submit_entry as spark_submit_entry

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

log = logging.getLogger(__name__)

METRICS_PORTS = {"counter": 9108, "archiver": 9109}
TRIGGER_SECONDS = {"counter": 1.0, "archiver": 30.0}
# Restarts after a failure wait 2, 4, 8 ... seconds, at most this long.
MAX_RESTART_DELAY_S = 30.0
# A run that stayed up this long before failing was healthy: the restart count starts over.
HEALTHY_RUN_S = 300.0


@dataclass(frozen=True)
class Trigger:
    available_now: bool = False
    interval_seconds: float = 1.0

    def apply(self, writer: "DataStreamWriter") -> "DataStreamWriter":
        if self.available_now:
            return writer.trigger(availableNow=True)
        return writer.trigger(processingTime=f"{self.interval_seconds} seconds")


def non_negative(kind: type) -> Callable[[str], object]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} must not be negative")
        return value
    return parse


def add_common_arguments(parser: argparse.ArgumentParser, *, default_checkpoint: str) -> None:
    parser.add_argument("--available-now", action="store_true",
                        help="process what Kafka holds now, then exit")
    parser.add_argument("--trigger-seconds", type=non_negative(float),
                        default=TRIGGER_SECONDS[default_checkpoint], metavar="S",
                        help="micro-batch interval when running continuously (default: %(default)s)")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help=f"checkpoint folder or URI (default: <run dir>/checkpoints/{default_checkpoint})")
    parser.add_argument("--starting-offsets", choices=["earliest", "latest"], default="earliest",
                        help="where a new checkpoint starts reading (default: %(default)s)")
    parser.add_argument("--max-offsets-per-trigger", type=non_negative(int), metavar="N",
                        help="upper bound on records per micro-batch, 0 for none (default: "
                             f"{SourceOptions.max_offsets_per_trigger}; a counter's --rebuild reads its "
                             "backlog in one batch and refuses a bound)")
    parser.add_argument("--metrics-port", type=non_negative(int), default=METRICS_PORTS[default_checkpoint],
                        metavar="PORT", help="Prometheus /metrics on 127.0.0.1 (0: off; default: %(default)s)")
    parser.add_argument("--max-restarts", type=non_negative(int), default=20, metavar="N",
                        help="restart failed queries from their checkpoints up to N times in a row, "
                             "waiting 2, 4, 8 ... up to 30 s (a server outage); 0 exits at once "
                             "(default: %(default)s)")
    parser.add_argument("--master", metavar="URL",
                        help=f"Spark master (default: VIEWCOUNT_SPARK_MASTER or {DEFAULT_MASTER}; "
                             "under spark-submit, its --master)")


def checkpoint_location(args: argparse.Namespace, settings: Settings, name: str) -> str:
    return args.checkpoint or str(settings.run_dir / "checkpoints" / name)


def trigger_from_args(args: argparse.Namespace) -> Trigger:
    return Trigger(available_now=args.available_now, interval_seconds=args.trigger_seconds)


def source_from_args(args: argparse.Namespace) -> SourceOptions:
    bound = args.max_offsets_per_trigger
    return SourceOptions(
        starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=(SourceOptions.max_offsets_per_trigger if bound is None else bound) or None,
    )


def session(app_name: str, settings: Settings, args: argparse.Namespace) -> "SparkSession":
    from spark_runtime.session import build_session, job_master

    return build_session(app_name, settings, master=job_master(args.master, settings),
                         extra_conf={"spark.driver.memory": "2g"})


@contextmanager
def persisted(frame: "DataFrame"):
    """A micro-batch DataFrame used by several actions: computed once, released after.
    (Recomputing a stateful stream's output would run its state operators twice.)"""
    frame.persist()
    try:
        yield frame
    finally:
        frame.unpersist()


def listen(spark: "SparkSession", jobs: dict) -> None:
    from speed_layer.progress import ProgressListener

    spark.streams.addListener(ProgressListener(jobs))


def servers_up(settings: Settings, *servers: str) -> Callable[[], bool]:
    """Whether every server a job needs answers (``storage.reachability``), for ``supervise``."""
    from storage.reachability import unreachable

    return lambda: not unreachable(settings, *servers, timeout=1.0)


def monitor_lag(settings: Settings, job: str) -> None:
    """Keep the job's per-partition lag gauge current from Kafka's end offsets, also while
    a long batch runs (the batch's own progress only knows the offsets it planned)."""
    from speed_layer.progress import LagMonitor

    LagMonitor(settings, job).start()


def serve(args: argparse.Namespace) -> None:
    from speed_layer.progress import serve_metrics

    try:
        serve_metrics(args.metrics_port)
    except OSError as error:
        raise UserError(f"cannot serve metrics on 127.0.0.1:{args.metrics_port} ({error.strerror}); "
                        "pick another --metrics-port or 0 to turn it off") from None


# After an outage, once the servers answer again, a restart waits only this long (a server
# whose port is open may still be starting; the driver reconnects its sessions in the meantime).
SETTLE_S = 2.0


def wait_before_restart(delay: float, servers_up: Callable[[], bool], *, recovering: bool = False,
                        poll_s: float = 1.0) -> bool:
    """Wait ``delay`` seconds before a restart, but no longer than until the servers, found
    down during this wait or an earlier one of the same run of failures (``recovering``),
    answer again, plus SETTLE_S: a restart then need not sleep out a delay that grew during
    a long outage. True when the servers were found down (or had been): the run of failures
    is an outage's."""
    deadline = time.monotonic() + delay
    seen_down = recovering
    while (left := deadline - time.monotonic()) > 0:
        if not servers_up():
            seen_down = True
        elif seen_down:
            time.sleep(min(SETTLE_S, left))
            return True
        time.sleep(min(poll_s, max(left, 0.0)))
    return seen_down


def supervise(spark: "SparkSession", start_queries: Callable[[], list["StreamingQuery"]],
              trigger: Trigger, max_restarts: int, servers_up: Callable[[], bool] = lambda: True) -> int:
    """Start the queries and wait for them; when one fails (Kafka, Cassandra or S3 gone for
    a while), start them all again from their checkpoints after a growing delay, up to
    ``max_restarts`` failures in a row, or as soon as the servers it found down
    (``servers_up``) answer again. The checkpoints make a restart exact: a batch that
    was not committed is replayed with the same offsets, and every sink write is idempotent.
    Exit status 1 once the restarts are spent; 0 when the queries ended normally."""
    from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

    began, outage, interrupted = 0.0, False, False

    def run() -> int:
        nonlocal began
        began = time.monotonic()
        spark.streams.resetTerminated()  # else the last run's failure ends the wait at once
        return await_queries(spark, start_queries(), trigger)

    def count_failure(state) -> None:
        nonlocal outage
        if time.monotonic() - began > HEALTHY_RUN_S:  # the failure of a healthy run is the first in a row
            state.attempt_number, outage = 1, False

    def announce(state) -> None:
        log.warning(f"restarting from the checkpoints in {state.next_action.sleep:.0f} s (restart "
                    f"{state.attempt_number} of at most {max_restarts} in a row)")

    def wait(delay: float) -> None:
        nonlocal outage, interrupted
        started = time.monotonic()
        try:
            outage = wait_before_restart(delay, servers_up, recovering=outage)
        except KeyboardInterrupt:
            interrupted = True
            raise
        if outage and time.monotonic() - started < delay:
            log.info("the servers answer again: restarting now")

    def give_up(state) -> int:
        if max_restarts:
            log.error(f"giving up after {max_restarts} restart(s) in a row")
        return 1

    # Failures in a row are tenacity's attempts: the delay doubles from 2 s up to
    # MAX_RESTART_DELAY_S, and the wait (``wait_before_restart``) ends early once the servers
    # it found down answer again.
    restarts = Retrying(retry=retry_if_result(lambda status: status == 1), stop=stop_after_attempt(max_restarts + 1),
                        wait=wait_exponential(multiplier=2, max=MAX_RESTART_DELAY_S), after=count_failure,
                        before_sleep=announce, sleep=wait, retry_error_callback=give_up)
    try:
        return restarts(run)
    except KeyboardInterrupt:
        if interrupted:  # during a wait: as a spent restart
            return 1
        raise


INTERRUPTED = 130


def await_queries(spark: "SparkSession", queries: list["StreamingQuery"], trigger: Trigger) -> int:
    """Available-now: wait for every query to finish. Continuous: run until one stops or
    fails, then stop the others. 1 when a query failed, 130 when interrupted, else 0."""
    interrupted = False
    try:
        if trigger.available_now:
            for query in queries:
                query.awaitTermination()
        else:
            spark.streams.awaitAnyTermination()
    except KeyboardInterrupt:
        interrupted = True
        log.info("stopping ...")
    except Exception:  # noqa: BLE001 - reported below from each query's own exception
        pass
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
    # Let the listener see the last batches' progress before the process goes away.
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(30_000)
    failed = [query for query in queries if query.exception() is not None]
    for query in failed:
        log.error(f"query {query.name} failed: {failure_reason(str(query.exception()))}")
    if interrupted:
        return INTERRUPTED
    return 1 if failed else 0


def failure_reason(text: str) -> str:
    """The line of a query's exception that says what went wrong. An error raised in our
    own Python code (a foreachBatch sink) arrives wrapped: Java's first line only says
    "An exception was raised by the Python Proxy"; the Python exception is the line before
    the Java stack trace resumes."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    if "Python Proxy" not in lines[0]:
        return lines[0]
    # A Python traceback's frames are indented; its first line that is not is the exception
    # (with or without Java's stack trace after it).
    if "Traceback (most recent call last):" in lines[0]:
        for line in lines[1:]:
            if not line.startswith((" ", "\t")):
                return line
    for previous, line in zip(lines, lines[1:]):
        if line.startswith("\tat ") and not previous.startswith(("\tat ", " ")):
            return previous
    return lines[0]


# One spark-submit entry for every job module (shared with the batch layer).
submit_entry = spark_submit_entry
