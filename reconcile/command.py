"""``viewcount reconcile --date D [--json] [--version N]``: speed vs batch vs Kafka offsets.

Exit status: 0 when the day passes the billing gate, 3 when it fails (a billable cell
diverges beyond tolerance for a cause other than ``late``; see ``reconcile.billing``),
2 with a one-line message on a user error (bad date, no complete batch version, ...).
The summary goes to stdout (JSON with ``--json``, else a few lines for a person),
progress lines to stderr; summary.json and report.html go to
``s3://<bucket>/reports/day=D/`` and the summary to Cassandra (``reconciliations``).
What is printed also lists the day's restatement records and its open restatement request
(``restatements``, ``restatement_request``: ``reconcile.restated``), which the stored
summary leaves out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from typing import TYPE_CHECKING

from settings.environment import ReconcileKnobs, Settings
from settings.errors import argument_type

from reconcile.tolerances import Tolerances, add_tolerance_arguments, tolerances_from
from counting.window import parse_day
from reconcile.inputs import chosen_version, positive_int, window_of

if TYPE_CHECKING:
    from reconcile.restated import DayRestatements

EXIT_FAIL = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=argument_type(parse_day), required=True, metavar="YYYY-MM-DD",
                        help="the UTC day")
    parser.add_argument("--version", type=positive_int, metavar="N",
                        help="the batch version to compare with (default: the newest complete one)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (the public contract)")
    parser.add_argument("--prefix", metavar="P",
                        help="S3 key prefix for the speed snapshot and the reports, e.g. 'staging' "
                             "(env VIEWCOUNT_RECONCILE_PREFIX; default: none)")
    parser.add_argument("--accept-gaps", action="store_true",
                        help="accept, for billing, the archive gaps a batch version was counted over "
                             "(viewcount batch --allow-gaps); without it such a version fails the gate")
    add_tolerance_arguments(parser)
    parser.add_argument("--master", metavar="URL",
                        help="Spark master (default: VIEWCOUNT_SPARK_MASTER or local[2])")


def reconcile_session(settings: Settings, master: str | None, knobs: ReconcileKnobs):
    """The reconciliation's SparkSession (also what ``bench/reconcile_compare.py`` times on)."""
    from spark_runtime.session import build_session

    # One day's cells are a few million rows a side at most: a handful of partitions, merged
    # further by adaptive execution, beats the 2 the speed layer's stateful stages use.
    partitions = knobs.shuffle_partitions
    return build_session(
        "viewcount-reconcile", settings, master=master or settings.spark.spark_master,
        extra_conf={"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": str(partitions)},
        short_lived=True,
    )


def summarize(day: dt.date, settings: Settings, knobs: ReconcileKnobs, *, version: int | None = None, prefix: str | None = None,
              tolerances: Tolerances | None = None, master: str | None = None, accept_gaps: bool = False) -> dict:
    """Reconcile ``day`` and publish the summary and report; returns the summary.

    The command line and the DAG call this the same way, with the settings and knobs they
    read; what they leave out comes from the knobs (the prefix and the tolerances) or the
    newest complete batch version."""
    return reconcile(day, settings, knobs, version=version, prefix=prefix, tolerances=tolerances, master=master,
                     accept_gaps=accept_gaps)[0]


def reconcile(day: dt.date, settings: Settings, knobs: ReconcileKnobs, *, version: int | None = None, prefix: str | None = None,
              tolerances: Tolerances | None = None, master: str | None = None,
              accept_gaps: bool = False) -> tuple[dict, "DayRestatements"]:
    """``summarize``, and the day's restatement records and open request, as read for the report."""
    from storage.batch_results import read_versions
    from storage.cassandra import connect

    from reconcile.pipeline import Locations, publish, reconcile_day, say
    from reconcile.restated import read_day

    started = time.monotonic()
    prefix = knobs.prefix if prefix is None else prefix
    tolerances = tolerances or tolerances_from({}, knobs)
    session = connect(settings)  # unreachable: the CLI says so in one line (storage.errors.explain)
    spark = None
    try:
        chosen = chosen_version(day, read_versions(session, day), version)
        window = window_of(chosen)
        say(day, f"batch version {chosen.version} ({chosen.parquet_uri}), arrivals until "
                 f"{window.cutoff:%Y-%m-%dT%H:%M:%SZ}")
        spark = reconcile_session(settings, master, knobs)
        locations = Locations(settings.s3_bucket, prefix.strip("/"), day)
        outcome = reconcile_day(spark, settings, session, chosen, window, tolerances, locations, accept_gaps)
        restatements = read_day(session, settings.views_topic, day)
        publish(settings, session, outcome, locations, restatements)
    finally:
        if spark is not None:
            spark.stop()
        session.cluster.shutdown()
    summary = outcome.summary
    say(day, f"{summary['status']} in {time.monotonic() - started:.1f} s; report {summary['report_uri']}")
    return summary, restatements


def run(args: argparse.Namespace) -> int:
    from reconcile.summary import human_text

    settings, knobs = Settings.from_env(), ReconcileKnobs.from_env()
    summary, restatements = reconcile(
        args.date, settings, knobs, version=args.version, prefix=args.prefix,
        tolerances=tolerances_from(vars(args), knobs),
        master=args.master, accept_gaps=args.accept_gaps)
    printed = summary | restatements.printed_fields()
    print(json.dumps(printed) if args.json else human_text(printed), flush=True)
    return EXIT_FAIL if summary["status"] == "fail" else 0
