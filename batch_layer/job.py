"""Recompute one UTC day from the raw archive into a new batch version (``viewcount batch``).

Stages, each reported on one stderr line: prove the archive complete for the day's
arrival window from Cassandra alone (before Spark starts); read the window's archive
hours from S3 and check the files against what the archiver recorded; count with the
speed layer's rules; claim a version (or find the one with the same input, which a rerun
rewrites); write the minute counts as Parquet and to Cassandra, the top videos, and mark
the version complete. Promotion is a separate step (``batch_layer.promotion``).

spark-submit entry point: ``spark-submit ... batch_layer/job.py --date YYYY-MM-DD``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from settings.errors import UserError, argument_type
from settings.environment import Settings

from counting.window import DEFAULT_GRACE, BatchWindow, parse_day, parse_grace

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import DataFrame, SparkSession

    from batch_layer.completeness import Completeness
    from batch_layer.recompute import ArchiveTallies
    from storage.batch_results import BatchStats, BatchVersion, VersionClaim

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=argument_type(parse_day), required=True, metavar="YYYY-MM-DD",
                        help="the UTC day to recompute; it must be over, grace included")
    parser.add_argument("--grace", type=argument_type(parse_grace), default=DEFAULT_GRACE, metavar="DURATION",
                        help="count arrivals until D+1 00:00 UTC plus this, e.g. 1h, 90m, 1h30m (default: 1h)")
    parser.add_argument("--allow-gaps", action="store_true",
                        help="count what the archive holds even where offsets are missing, "
                             "and record the gaps in the version")
    parser.add_argument("--archive", metavar="URI", help="archive root (default: s3a://<bucket>/archive/<topic>)")
    parser.add_argument("--output", metavar="URI",
                        help="Parquet root; a version goes to <root>/day=D/version=N (default: s3a://<bucket>/batch)")
    parser.add_argument("--master", metavar="URL",
                        help="Spark master (default: VIEWCOUNT_SPARK_MASTER or local[2]; under spark-submit, its --master)")


def _say(day: dt.date, text: str) -> None:
    log.info(f"batch {day}: {text}")


def _checked_archive(session: "Session", settings: Settings, window: BatchWindow,
                     allow_gaps: bool) -> "Completeness":
    from batch_layer.completeness import archive_completeness, refusal
    from batch_layer.restatement import final_version

    completeness = archive_completeness(session, settings, window)
    if completeness.gaps and not allow_gaps:
        raise refusal(window.day, completeness.gaps)
    verdict = f"{len(completeness.gaps)} gaps accepted (--allow-gaps)" if completeness.gaps else "ok"
    _say(window.day, f"completeness {verdict}: {completeness.summary()}")
    final = final_version(session, window.day)
    if final is not None:  # a final day: a new version restates it, once reconciled and promoted
        _say(window.day, f"version {final.version} is final: a new version restates it once it is reconciled "
                         "and promoted (per-video changes are recorded against it)")
    return completeness


def batch_session(settings: Settings, master: str | None) -> "SparkSession":
    """The batch's SparkSession (also what ``bench/batch_throughput.py`` times on)."""
    from spark_runtime.session import build_session, job_master

    partitions = str(settings.spark.batch_shuffle_partitions)
    return build_session("viewcount-batch", settings, master=job_master(master, settings),
                         extra_conf={"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": partitions},
                         short_lived=True)


def count_window(spark: "SparkSession", root: str, window: BatchWindow, completeness: "Completeness | None",
                 allow_gaps: bool = False) -> tuple["DataFrame", "ArchiveTallies", "BatchStats"]:
    """The day's counts (cached) and statistics from the window's archive hours under
    ``root``: what ``viewcount batch`` computes before it writes anything (and what
    ``bench/batch_throughput.py`` times). The archive files are first checked against
    ``completeness`` (archive_hours; a cheap pass: no value bytes are read); None skips
    that check (a benchmark's archive has no rows). The valid events of D that arrived
    in the hour after the cutoff are counted for the statistics, not in the counts."""
    from batch_layer.completeness import file_gaps, refusal
    from batch_layer.recompute import (
        PAST_CUTOFF_SPAN, count_day, day_stats, events_in_window, past_cutoff_events, tally_archive)
    from storage.archive import read_archive_hours

    records = read_archive_hours(spark, root, window.hours())  # the tallies count what lies outside the window too
    tallies = tally_archive(records, window)
    if completeness is not None:
        gaps = file_gaps(completeness.spans, tallies.by_partition)
        if gaps and not allow_gaps:
            raise refusal(window.day, gaps)
        completeness.gaps.extend(gaps)
    events = events_in_window(records, window).persist()  # read by the counts and the statistics
    counts = events.transform(count_day(window)).persist()
    counts.count()
    after = read_archive_hours(spark, root, window.hours_after_cutoff(PAST_CUTOFF_SPAN))
    stats = day_stats(events, counts, window, past_cutoff_events(records.unionByName(after), window))
    events.unpersist()
    return counts, tallies, stats


def _report_input(day: dt.date, stats: "BatchStats", tallies: "ArchiveTallies") -> None:
    _say(day, f"read {stats.events_read:,} events that arrived in the window "
              f"({tallies.records:,} archived records in its hours)")
    invalid = ", ".join(f"{reason} {count:,}" for reason, count in stats.invalid.items() if count)
    _say(day, f"invalid per reason: {invalid or 'none'} (total {sum(stats.invalid.values()):,})")
    _say(day, f"duplicates removed {stats.duplicates_removed:,}; valid events of other days "
              f"{stats.other_days:,}; of D arrived in the hour after the cutoff {stats.past_cutoff:,} (not counted)")
    if stats.restamped_events:
        _say(day, f"re-stamped retries: {stats.restamped_events:,} event ids counted in more than one minute, "
                  f"{stats.restamped_extra_views:,} views beyond one each (e.g. {stats.restamped_sample[0]})")


def _claim(session: "Session", window: BatchWindow, completeness: "Completeness",
           allow_gaps: bool) -> tuple["VersionClaim", "BatchVersion | None"]:
    """The version to write, and the existing version with the same input it rewrites."""
    from batch_layer.versions import input_fingerprint, next_version, reusable_version, rules_version
    from storage.batch_results import VersionClaim, claim_version, read_versions

    claim = VersionClaim(
        day=window.day, version=0, input_fingerprint=input_fingerprint(window, completeness, rules_version()),
        cutoff=window.cutoff, allow_gaps=allow_gaps, gaps=list(completeness.gaps),
        input_offsets={p: (span.first, span.last) for p, span in completeness.spans.items()},
    )
    existing = read_versions(session, window.day)
    same_input = reusable_version(existing, claim.input_fingerprint)
    if same_input is not None:
        return replace(claim, version=same_input.version), same_input
    version = next_version(existing)
    while not claim_version(session, replace(claim, version=version)):
        version += 1  # another run took this number since we read the versions
    return replace(claim, version=version), None


def _publish(counts: "DataFrame", session: "Session", settings: Settings, claim: "VersionClaim",
             stats: "BatchStats", output: str, was_complete: bool) -> str:
    """Parquet, then Cassandra rows, then 'complete': a reader never sees a complete
    version whose rows are still being written. Rewriting a complete version upserts the
    same values; its Parquet is kept, since overwriting removes the files under a reader."""
    from batch_layer.recompute import top_videos_by_views
    from storage.batch_results import complete_version, write_batch_minute_views, write_top_videos

    parquet_uri = f"{output}/day={claim.day}/version={claim.version}"
    if not was_complete:
        counts.write.mode("overwrite").parquet(parquet_uri)
    write_batch_minute_views(counts, settings, claim.day, claim.version)
    write_top_videos(session, claim.day, claim.version, top_videos_by_views(counts))
    _record_deltas(counts, session, claim)
    complete_version(session, claim, stats, parquet_uri)
    return parquet_uri


def _record_deltas(counts: "DataFrame", session: "Session", claim: "VersionClaim") -> None:
    """Per video, what this version changes against the day's promoted version (before
    the version is complete, so a promotion always finds them)."""
    from batch_layer.restatement import final_version, version_deltas
    from storage.restatements import write_version_deltas

    final = final_version(session, claim.day)
    if final is None or final.version == claim.version or not final.parquet_uri:
        return
    deltas = version_deltas(counts.sparkSession, final.parquet_uri, counts)
    write_version_deltas(session, claim.day, claim.version, final.version, deltas)
    moved = sum(new - old for _, old, new in deltas)
    _say(claim.day, f"against final version {final.version}: {len(deltas):,} videos change, {moved:+,} views")


def recompute_day(settings: Settings, window: BatchWindow, *, allow_gaps: bool = False,
                  master: str | None = None, archive: str | None = None,
                  output: str | None = None) -> "VersionClaim":
    """Every stage for one day; returns the version written. ``archive`` and ``output``
    default to the bucket's (see ``add_arguments``); ``master`` to ``job_master``'s."""
    from storage.archive import archive_path
    from storage.batch_results import COMPLETE
    from storage.cassandra import connect

    started = time.monotonic()
    session, spark = connect(settings), None
    try:
        completeness = _checked_archive(session, settings, window, allow_gaps)
        spark = batch_session(settings, master)
        counts, tallies, stats = count_window(spark, archive or archive_path(settings), window, completeness,
                                              allow_gaps)
        _report_input(window.day, stats, tallies)
        claim, same_input = _claim(session, window, completeness, allow_gaps)
        output = output or f"s3a://{settings.s3_bucket}/batch"
        was_complete = same_input is not None and same_input.status == COMPLETE
        uri = _publish(counts, session, settings, claim, stats, output, was_complete)
        what = "rewrote version" if same_input else "wrote version"
        _say(window.day, f"{what} {claim.version}: {stats.cells:,} cells, {stats.total_views:,} views, "
                         f"{stats.videos:,} videos in {time.monotonic() - started:.1f} s ({uri})")
        return claim
    finally:
        session.cluster.shutdown()
        if spark is not None:
            spark.stop()


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    window = BatchWindow(args.date, args.grace)
    if not window.is_over(dt.datetime.now(dt.timezone.utc)):
        raise UserError(f"day {window.day} is not over yet: arrivals count until its cutoff "
                        f"{window.cutoff:%Y-%m-%dT%H:%M:%SZ} (midnight + grace), which is still ahead")
    _say(window.day, window.describe())
    recompute_day(settings, window, allow_gaps=args.allow_gaps, master=args.master,
                  archive=args.archive, output=args.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    from spark_runtime.session import submit_entry

    return submit_entry(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
