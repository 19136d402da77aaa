"""What a streaming job reports after every micro-batch: Prometheus metrics on
``/metrics``, one console line, and (for the counter) the micro-batch log's counters.

Spark hands each finished batch's progress to a StreamingQueryListener; everything here
is read from that report, so it costs the batch nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from pyspark.sql.streaming import StreamingQueryListener

from counting.reasons import REASONS
from settings.environment import Settings

ROWS = Counter("viewcount_speed_rows", "Kafka records read", ["job"])
ROWS_PER_SECOND = Gauge("viewcount_speed_rows_per_second", "records processed per second", ["job"])
BATCH_SECONDS = Histogram(
    "viewcount_speed_batch_duration_seconds", "micro-batch duration", ["job"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120),
)
LAG = Gauge("viewcount_speed_lag_records", "records behind the end of the topic", ["job", "partition"])
LATE = Counter("viewcount_speed_late_dropped", "events dropped as behind the watermark", ["job"])
DUPLICATES = Counter("viewcount_speed_duplicates_dropped", "repeated events dropped", ["job"])
INVALID = Counter("viewcount_speed_invalid", "records rejected by the counting rules", ["job", "reason"])
LAST_BATCH = Gauge("viewcount_speed_last_batch_id", "id of the last finished micro-batch", ["job"])
# With the lag: records waiting while no batch finished for a minute is a stalled job.
LAST_BATCH_TIME = Gauge("viewcount_speed_last_batch_timestamp_seconds",
                        "when the last micro-batch finished (Unix time)", ["job"])
# Above 0 the watermark is ahead of the clock that started the batch: every on-time view is
# then dropped as late (a producer's clock runs fast, or an event_time outlier got in).
WATERMARK_AHEAD = Gauge("viewcount_speed_watermark_ahead_seconds",
                        "event-time watermark minus the start of the batch that applied it", ["job"])

INPUT_METRICS = "viewcount_input"  # name of the observe() on the parsed records

# Per job: end offsets of the last finished batch (from the listener) and the topic's end
# offsets as last polled from Kafka (by the LagMonitor); lag is the difference.
_processed: dict[str, dict[int, int]] = {}
_topic_ends: dict[str, dict[int, int]] = {}


@dataclass
class BatchReport:
    job: str
    batch_id: int
    rows_in: int
    rows_per_second: float
    duration_ms: int
    late_dropped: int
    duplicates_dropped: int
    invalid: dict[str, int]
    lag: dict[int, int]
    watermark: str | None
    end_offsets: dict[int, int] = field(default_factory=dict)
    observed: dict[str, dict] = field(default_factory=dict)
    started_at: str | None = None  # the batch's trigger time (the driver's clock), ISO 8601

    def watermark_ahead_seconds(self) -> float | None:
        """The watermark minus the batch's start; None before a query has a watermark."""
        if not self.watermark or not self.started_at:
            return None
        return (dt.datetime.fromisoformat(self.watermark) - dt.datetime.fromisoformat(self.started_at)).total_seconds()

    def line(self) -> str:
        invalid = sum(self.invalid.values())
        return (
            f"[{self.job}] batch {self.batch_id}: {self.rows_in:,} rows in {self.duration_ms / 1000:.2f} s"
            f" ({self.rows_per_second:,.0f}/s), late {self.late_dropped:,}, duplicates"
            f" {self.duplicates_dropped:,}, invalid {invalid:,}, lag {sum(self.lag.values()):,},"
            f" watermark {self.watermark or '-'}"
        )


def _offsets(text: str | None) -> dict[int, int]:
    """{partition: offset} from a progress's Kafka offsets JSON. A restarted query's first
    progress can carry no parsable offsets: that is no offsets, not a listener crash (which
    would lose the batch's report and metrics)."""
    try:
        parsed = json.loads(text) if text and text.strip() else None
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {int(p): int(o) for partitions in parsed.values() if isinstance(partitions, dict)
            for p, o in partitions.items()}


def report_from_progress(job: str, progress) -> BatchReport:
    source = progress.sources[0] if progress.sources else None
    ends = _offsets(source.endOffset) if source else {}
    latest = _offsets(source.latestOffset) if source else {}
    operators = progress.stateOperators or []
    observed = {name: row.asDict() for name, row in (progress.observedMetrics or {}).items()}
    inputs = observed.get(INPUT_METRICS)
    invalid = {reason: int(inputs[reason] or 0) for reason in REASONS} if inputs else {}
    # The counter reads its source twice per batch (speed_layer.watermark.batch_clock),
    # so Spark's numInputRows counts each record twice; its observed count is exact.
    rows_in = int(inputs["rows_in"] or 0) if inputs and "rows_in" in inputs else progress.numInputRows
    rows_per_second = (rows_in * 1000 / progress.batchDuration if inputs and progress.batchDuration
                       else progress.processedRowsPerSecond or 0.0)
    return BatchReport(
        job=job,
        batch_id=progress.batchId,
        rows_in=rows_in,
        rows_per_second=rows_per_second,
        duration_ms=progress.batchDuration,
        late_dropped=sum(op.numRowsDroppedByWatermark for op in operators),
        duplicates_dropped=sum(int(op.customMetrics.get("numDroppedDuplicateRows", 0)) for op in operators),
        invalid=invalid,
        lag={p: max(latest.get(p, end) - end, 0) for p, end in ends.items()},
        watermark=(progress.eventTime or {}).get("watermark"),
        end_offsets=ends,
        observed=observed,
        started_at=progress.timestamp,
    )


def publish(report: BatchReport) -> None:
    job = report.job
    ROWS.labels(job).inc(report.rows_in)
    ROWS_PER_SECOND.labels(job).set(report.rows_per_second)
    BATCH_SECONDS.labels(job).observe(report.duration_ms / 1000)
    LATE.labels(job).inc(report.late_dropped)
    DUPLICATES.labels(job).inc(report.duplicates_dropped)
    for reason, count in report.invalid.items():
        INVALID.labels(job, reason).inc(count)
    LAST_BATCH.labels(job).set(report.batch_id)
    LAST_BATCH_TIME.labels(job).set_to_current_time()
    ahead = report.watermark_ahead_seconds()
    if ahead is not None:
        WATERMARK_AHEAD.labels(job).set(ahead)


class ProgressListener(StreamingQueryListener):
    """Publishes every finished batch of the named queries; ``on_report`` adds a job's own use."""

    def __init__(self, jobs: dict[str, Callable[[BatchReport], None] | None], quiet: bool = False):
        self.jobs = jobs
        self.quiet = quiet

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        progress = event.progress
        if progress.name not in self.jobs:
            return
        report = report_from_progress(progress.name, progress)
        _processed[report.job] = report.end_offsets
        ends = _topic_ends.get(report.job)
        if ends:
            report.lag = _lag(report.end_offsets, ends)
        publish(report)
        on_report = self.jobs[progress.name]
        if on_report is not None:
            on_report(report)
        if not self.quiet:
            print(report.line(), file=sys.stderr, flush=True)

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass  # a failure is reported by jobs.await_queries, with the query's name


def _lag(processed: dict[int, int], ends: dict[int, int]) -> dict[int, int]:
    return {p: max(ends.get(p, done) - done, 0) for p, done in processed.items()}


class LagMonitor(threading.Thread):
    """Polls the topic's end offsets every ``interval`` seconds and sets the lag gauge to
    what has arrived beyond the last finished batch: the batch's own progress only knows
    the offsets it planned, so it reads 0 while a long batch runs."""

    def __init__(self, settings: Settings, job: str, interval: float = 2.0):
        super().__init__(name=f"lag-{job}", daemon=True)
        self.settings, self.job, self.interval = settings, job, interval

    def run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from storage.kafka_config import QUIET_LOGGER, client_config

        # While Kafka is down the lag gauge just keeps its last value.
        consumer = Consumer(client_config(self.settings, **{"group.id": f"viewcount-lag-{self.job}",
                                                            "logger": QUIET_LOGGER}))
        topic = self.settings.views_topic
        while True:
            processed = _processed.get(self.job)
            try:
                if processed:
                    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                            for p in processed}
                    _topic_ends[self.job] = ends
                    for partition, lag in _lag(processed, ends).items():
                        LAG.labels(self.job, str(partition)).set(lag)
            except Exception:  # noqa: BLE001 - Kafka briefly away: keep the last values
                pass
            time.sleep(self.interval)


def serve_metrics(port: int) -> None:
    """Prometheus text format on 127.0.0.1:<port>/metrics (0 disables)."""
    if port:
        start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
