"""``viewcount reconcile --date D [--json] [--version N]``: speed vs batch vs Kafka offsets.

Exit status: 0 when the day passes the billing gate, 3 when it fails (a billable cell
diverges beyond tolerance for a cause other than ``late``; see ``reconcile.billing``),
2 with a one-line message on a user error (bad date, no complete batch version, ...).
The summary goes to stdout (JSON with ``--json``, else a few lines for a person),
progress lines to stderr; summary.json and report.html go to
``s3://<bucket>/reports/day=D/`` and the summary to Cassandra (``reconciliations``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time

from storage.errors import UserError
from storage.settings import Settings

from reconcile.tolerances import add_tolerance_arguments, tolerances_from
from counting.window import parse_day
from reconcile.inputs import chosen_version, positive_int, window_of

EXIT_FAIL = 3
DEFAULT_MASTER = "local[2]"
# One day's cells are a few million rows a side at most: a handful of partitions, merged
# further by adaptive execution, beats the 2 the speed layer's stateful stages use.
DEFAULT_SHUFFLE_PARTITIONS = "8"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=parse_day, required=True, metavar="YYYY-MM-DD", help="the UTC day")
    parser.add_argument("--version", type=positive_int, metavar="N",
                        help="the batch version to compare with (default: the newest complete one)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (the public contract)")
    parser.add_argument("--prefix", default=os.environ.get("VIEWCOUNT_RECONCILE_PREFIX", ""), metavar="P",
                        help="S3 key prefix for the speed snapshot and the reports, e.g. 'staging' "
                             "(env VIEWCOUNT_RECONCILE_PREFIX; default: none)")
    add_tolerance_arguments(parser)
    parser.add_argument("--master", metavar="URL",
                        help="Spark master (default: VIEWCOUNT_SPARK_MASTER or local[2])")


def _spark(settings: Settings, master: str | None):
    from storage.spark import build_session

    partitions = os.environ.get("VIEWCOUNT_RECONCILE_SHUFFLE_PARTITIONS", DEFAULT_SHUFFLE_PARTITIONS)
    return build_session(
        "viewcount-reconcile", settings,
        master=master or os.environ.get("VIEWCOUNT_SPARK_MASTER", DEFAULT_MASTER),
        extra_conf={"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": partitions},
    )


def summarize(args: argparse.Namespace) -> dict:
    """Reconcile ``args.date`` and publish the summary and report; returns the summary."""
    from storage.batch_results import read_versions
    from storage.cassandra import connect

    from reconcile.pipeline import Locations, publish, reconcile_day, say

    settings, started = Settings.from_env(), time.monotonic()
    tolerances = tolerances_from(args)
    try:
        session = connect(settings)
    except Exception as error:  # noqa: BLE001 - the driver raises several kinds; all mean "unreachable"
        raise UserError(f"cannot reach Cassandra at {','.join(settings.cassandra_hosts)}: {error}") from None
    spark = None
    try:
        version = chosen_version(args.date, read_versions(session, args.date), args.version)
        window = window_of(version)
        say(args.date, f"batch version {version.version} ({version.parquet_uri}), arrivals until "
                       f"{window.cutoff:%Y-%m-%dT%H:%M:%SZ}")
        spark = _spark(settings, args.master)
        locations = Locations(settings.s3_bucket, args.prefix.strip("/"), args.date)
        outcome = reconcile_day(spark, settings, session, version, window, tolerances, locations)
        publish(settings, session, outcome, locations)
    finally:
        if spark is not None:
            spark.stop()
        session.cluster.shutdown()
    summary = outcome.summary
    say(args.date, f"{summary['status']} in {time.monotonic() - started:.1f} s; report {summary['report_uri']}")
    return summary


def reconcile_for(day: dt.date) -> dict:
    """Reconcile one day with the default options (flags' defaults, then the environment)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return summarize(parser.parse_args(["--date", day.isoformat()]))


def run(args: argparse.Namespace) -> int:
    from reconcile.summary import human_text

    summary = summarize(args)
    print(json.dumps(summary) if args.json else human_text(summary), flush=True)
    return EXIT_FAIL if summary["status"] == "fail" else 0
