"""One reconciliation of day D, stage by stage (each reported on one stderr line):

1. snapshot the speed table's cells of D to Parquet (token-range scan);
2. compare them with the batch version's Parquet, full outer, per (video, minute);
3. check the archive of the batch's arrival window against Kafka's offsets;
4. for the divergent cells only: gather every countable occurrence (archive, Kafka at the
   archive's gaps, and Kafka after the cutoff where the speed layer read there), find the
   speed micro-batch that consumed each, classify causes;
5. bill: catalog rates, tolerances, the gate; the summary, the HTML report.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.batch_results import BatchVersion
from settings.environment import Settings

from reconcile.tolerances import Tolerances
from counting.window import BatchWindow as Window

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import DataFrame, SparkSession

    from reconcile.compare import Totals
    from reconcile.restated import DayRestatements
    from reconcile.summary import Figures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    summary: dict
    figures: "Figures"
    totals: "Totals"


def say(day: dt.date, text: str) -> None:
    log.info(f"reconcile {day}: {text}")


@dataclass(frozen=True)
class Locations:
    """Where one reconciliation writes in S3: <prefix>/reconcile/day=D/speed.parquet and
    <prefix>/reports/day=D/{summary.json,report.html}."""

    bucket: str
    prefix: str
    day: dt.date

    def key(self, folder: str, name: str) -> str:
        return "/".join(part for part in (self.prefix, folder, f"day={self.day.isoformat()}", name) if part)

    @property
    def speed_snapshot(self) -> str:
        return f"s3a://{self.bucket}/{self.key('reconcile', 'speed.parquet')}"

    @property
    def report_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key('reports', 'report.html')}"


def _archive(spark: "SparkSession", settings: Settings, session: "Session", window: Window):
    """Kafka's window offsets, the archived records, the archive's completeness, and the
    Kafka records at its gaps (persisted, or None: the caller unpersists them). A gap's
    records are all the records at the holes it was narrowed from, so they are read once."""
    from storage.archive import archive_path, read_window

    from storage.topics import partition_offsets

    from reconcile.completeness import archive_hours_records, check_archive, kafka_window_offsets, narrowed_to_records
    from reconcile.evidence import gap_records

    kafka = kafka_window_offsets(settings, window)
    archived = read_window(spark, archive_path(settings), window)
    completeness = check_archive(archived.select("partition", "offset"), kafka,
                                 archive_hours_records(session, settings.views_topic, window))
    holes = [gap for partition in completeness for gap in partition.gaps]
    from_kafka = None
    if holes:  # a gap only where Kafka holds a committed record (not a transaction marker)
        earliest = {p: low for p, (low, _) in partition_offsets(settings, settings.views_topic).items()}
        from pyspark.sql import functions as F

        from counting.day import arrived_in_window

        from_kafka = gap_records(spark, settings, holes).persist()
        # A record stamped outside the window belongs to another day's hours (a producer
        # clock behind, a retry appended late): its offset in the window's range is no gap.
        stamped_inside = from_kafka.filter(arrived_in_window(window, F.col("kafka_timestamp")))
        gaps = narrowed_to_records(holes, stamped_inside, earliest)
        for partition in completeness:
            partition.gaps = [gap for gap in gaps if gap.partition == partition.partition]
    return kafka, archived, completeness, from_kafka


def _classified(spark: "SparkSession", settings: Settings, session: "Session", window: Window,
                divergent: "DataFrame", kafka: dict, archived: "DataFrame",
                from_kafka: "DataFrame | None") -> tuple["DataFrame", "DataFrame"]:
    """The divergent cells with their cause, proven from the events behind them, and the
    persisted per-occurrence status they were proven from (the caller unpersists it)."""
    from pyspark.sql import functions as F

    from reconcile.causes import classify
    from reconcile.completeness import kafka_offsets_at
    from reconcile.consumption import CELL, cell_evidence, occurrence_status, ranges_frame
    from reconcile.evidence import AFTER_CUTOFF_SPAN, kafka_records, occurrences, read_past_window
    from reconcile.speed_log import consumed_ranges

    # The log's ranges of the window and of the span after it: a counter catching up across
    # midnight may have counted views of D that arrived after the cutoff.
    (span_ends,) = kafka_offsets_at(settings, window.cutoff + AFTER_CUTOFF_SPAN)
    reach = {p: (first, max(end, span_ends.get(p, end))) for p, (first, end) in kafka.items()}
    ranges = consumed_ranges(session, settings.views_topic, reach)
    say(window.day, f"speed log: {len(ranges):,} (micro-batch, partition) ranges overlap the window "
                    f"and the {AFTER_CUTOFF_SPAN.total_seconds() / 3600:g} h after it")
    cells = divergent.select(*CELL)
    videos = [row.video_id for row in cells.select("video_id").distinct().collect()]
    consumed_ends = {}
    for consumed in ranges:
        consumed_ends[consumed.partition] = max(consumed_ends.get(consumed.partition, 0), consumed.end)
    past = read_past_window({p: end for p, (_, end) in kafka.items()}, consumed_ends, span_ends)
    after_cutoff = kafka_records(spark, settings, past) if past else None
    events = occurrences(archived, from_kafka, window, videos, after_cutoff).join(
        F.broadcast(cells), on=list(CELL), how="left_semi")
    # The evidence reads the divergent cells' occurrences in several branches: parse the
    # window's records once, keep the few rows they leave.
    status = occurrence_status(events, ranges_frame(spark, ranges)).persist()
    return classify(divergent, cell_evidence(status)), status


def reconcile_day(spark: "SparkSession", settings: Settings, session: "Session", version: BatchVersion,
                  window: Window, tolerances: Tolerances, locations: Locations, accept_gaps: bool = False) -> Outcome:
    from reconcile.billing import bill
    from reconcile.compare import divergent_cells
    from reconcile.speed_snapshot import read_catalog, snapshot_speed
    from reconcile.summary import Figures, build_summary, figures_of

    day, started = window.day, time.monotonic()
    speed_uri = snapshot_speed(spark, settings, day, locations.speed_snapshot)
    say(day, f"speed snapshot written to {speed_uri} in {time.monotonic() - started:.1f} s")
    divergent, totals = divergent_cells(spark.read.parquet(speed_uri), spark.read.parquet(version.parquet_uri))
    say(day, f"compared {totals.cells_compared:,} cells with batch version {version.version}: "
             f"{totals.cells_divergent:,} divergent ({time.monotonic() - started:.1f} s)")
    kafka, archived, completeness, from_kafka = _archive(spark, settings, session, window)
    gaps = sum(len(partition.gaps) for partition in completeness)
    say(day, f"archive vs Kafka: {len(completeness)} partitions, {gaps:,} gaps ({time.monotonic() - started:.1f} s)")
    figures = Figures()
    if totals.cells_divergent:
        classified, status = _classified(spark, settings, session, window, divergent, kafka, archived,
                                         from_kafka)
        billed = bill(classified, read_catalog(spark, settings), tolerances).persist()
        figures = figures_of(billed)
        billed.unpersist()
        status.unpersist()
        causes = ", ".join(f"{name} {count:,}" for name, count in figures.causes.items() if count)
        say(day, f"causes: {causes} ({time.monotonic() - started:.1f} s)")
    divergent.unpersist()
    if from_kafka is not None:
        from_kafka.unpersist()
    extra = {
        "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window": {"start": window.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "cutoff": window.cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "speed_snapshot_uri": speed_uri,
        "batch_parquet_uri": version.parquet_uri,
        # Counted by both layers alike (no divergence shows them): over-counting clients.
        "restamped_events": version.restamped_events,
        "restamped_extra_views": version.restamped_extra_views,
        "restamped_sample": list(version.restamped_sample),
    }
    summary = build_summary(day=day.isoformat(), version=version.version, totals=totals, figures=figures,
                            tolerances=tolerances, archive=completeness, report_uri=locations.report_uri,
                            extra=extra, batch_gaps=list(version.gaps), accept_gaps=accept_gaps)
    return Outcome(summary, figures, totals)


def publish(settings: Settings, session: "Session", outcome: Outcome, locations: Locations,
            restatements: "DayRestatements | None" = None) -> None:
    """summary.json and report.html to S3, then the summary row to Cassandra (serving
    reads the row: it appears only once the report it points at exists). The report also
    shows what promoting the version would restate, and the day's earlier restatements."""
    import json

    from storage.reconciliations import write_summary
    from storage.s3 import client

    from reconcile.report import render
    from reconcile.restated import restated_version

    summary, day = outcome.summary, outcome.summary["day"]
    restated = restated_version(session, dt.date.fromisoformat(day), summary["batch_version"])
    html = render(summary, outcome.figures, outcome.totals.speed_by_hour, outcome.totals.batch_by_hour,
                  restated=restated, records=restatements.records if restatements else ())
    s3 = client(settings)
    s3.put_object(Bucket=locations.bucket, Key=locations.key("reports", "summary.json"),
                  ContentType="application/json", Body=json.dumps(summary, indent=1).encode())
    s3.put_object(Bucket=locations.bucket, Key=locations.key("reports", "report.html"),
                  ContentType="text/html; charset=utf-8", Body=html.encode())
    write_summary(session, dt.date.fromisoformat(day), summary)
