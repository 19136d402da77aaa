"""`viewcount reconcile` on a real day: Kafka, the speed layer, the archive, the batch.

One day is produced, counted by the speed layer, archived and recomputed once; a clean
reconciliation runs first. Then faults go into separate cells of the same day: events
behind the speed layer's watermark, speed rows deleted or lowered, speed cells overwritten
with occurrence counts (a replay without dedupe state), an archive file removed (batch
rerun with --allow-gaps), a view of D that arrived after the cutoff while the counter's
watermark still let it in. The second reconciliation must find exactly those cells, each
with its cause, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest

from reconcile.restated import PRINTED_ONLY
from tests.support.speed import consume, expected_speed_counts, isolated, logged_batches, viewcount
from tests.support.batch import run_cli
from tests.support.reconcile import (
    MS_PER_MINUTE, day_start_ms, distinct_counts, divergences_by_cell, late_cells_of, occurrences_by_cell,
    remove_archive_file, repeated_cells, rewrite_speed_cells, run_together, send, view, write_catalog_csv,
)

# One module fixture runs the whole pipeline twice (about 12 Spark jobs on a 2-core machine).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2700)]

DAY = dt.date(2026, 11, 17)
DAY_MS = day_start_ms(DAY)
CUTOFF_MS = DAY_MS + 25 * 3_600_000
INJECTED_ARRIVAL_MS = DAY_MS + 24 * 3_600_000 + 30 * MS_PER_MINUTE  # D+1 00:30, inside the grace hour
AFTER_CUTOFF_ARRIVAL_MS = CUTOFF_MS + 30 * MS_PER_MINUTE  # D+1 01:30: not the batch's, but speed counts it
ACCEPTED = ("late", "after_cutoff")
VIDEOS = 150
CONTRACT = {"day": str, "status": str, "cells_compared": int, "cells_divergent": int,
            "billing_cells_divergent": int, "views_speed": int, "views_batch": int, "abs_delta_views": int,
            "money_at_risk": dict, "causes": dict, "divergences": list, "report_uri": str}


@dataclass
class Reconciled:
    settings: object
    env: dict
    prefix: str
    catalog: dict
    clean: object  # the CLI run before any fault
    clean_cells: dict
    faulted: object  # the CLI run after the faults
    expected: dict  # cell -> (speed, batch, cause, billable)
    removed: set
    stored: dict | None
    s3_summary: dict
    report_html: str


@pytest.fixture(scope="module")
def reconciled(stack, tmp_path_factory):
    with isolated(stack, "test-reconcile") as (settings, env):
        yield _reconcile_a_day(settings, env, tmp_path_factory.mktemp("reconcile"))


def _pipeline_run(env, folder, *speed_args: str) -> None:
    """The counter and the archiver over what Kafka holds, side by side as in production."""
    run_together(env, ("speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "speed"),
                       *speed_args),
                 ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "archive")))


def _choose_fault_cells(cells: dict, touched: set, catalog: dict) -> dict:
    """Disjoint billable cells for each fault, away from the removed file and hour 23."""
    usable = sorted(cell for cell in cells if cell not in touched and catalog[cell[0]][0]
                    and (cell[1] - DAY_MS) // 3_600_000 not in (12, 23))
    duplicated = [cell for cell in repeated_cells(cells) if cell in set(usable)][:2]
    rest = [cell for cell in usable if cell not in duplicated]
    lowered = next(cell for cell in rest[2:] if len({e for _, _, e in cells[cell]}) >= 2)
    late_existing = next(cell for cell in rest[3:] if cell != lowered and (cell[1] - DAY_MS) // 3_600_000 == 3)
    video = late_existing[0]
    late_new = next((video, DAY_MS + 4 * 3_600_000 + m * MS_PER_MINUTE) for m in range(60)
                    if (video, DAY_MS + 4 * 3_600_000 + m * MS_PER_MINUTE) not in cells)
    after_video = next(c[0] for c in rest[4:] if c[0] not in (video, lowered[0]) and catalog[c[0]][0])
    after_cutoff = (after_video, DAY_MS + 86_400_000 - MS_PER_MINUTE)  # minute 23:59, above the watermark
    assert after_cutoff not in cells
    return {"duplicated": duplicated, "deleted": rest[:2], "lowered": lowered, "late": [late_existing, late_new],
            "after_cutoff": [after_cutoff]}


def _inject_late_views(settings, faults: dict) -> None:
    """Ten fresh views first, so the late ones come in a later micro-batch (at most 10
    records per trigger), whose watermark is the one restored from the first run; last, a
    view of D's last minute that arrived after the cutoff, still above that watermark."""
    filler_video = faults["late"][0][0]
    fresh = [(filler_video, view(filler_video, DAY_MS + 86_400_000 - 90_000), INJECTED_ARRIVAL_MS) for _ in range(10)]
    late = [(video, view(video, minute + 20_000), INJECTED_ARRIVAL_MS)
            for (video, minute), count in zip(faults["late"], (2, 3)) for _ in range(count)]
    after = [(video, view(video, minute + 30_000), AFTER_CUTOFF_ARRIVAL_MS) for video, minute in faults["after_cutoff"]]
    send(settings, 0, fresh + late + after)


def _expected(settings, folder, faults: dict, removed: set, catalog: dict) -> dict:
    messages = consume(settings, settings.views_topic)
    speed, late = expected_speed_counts(messages, logged_batches(settings, folder / "speed" / "counts"))
    speed = {cell: views for cell, views in speed.items() if DAY_MS <= cell[1] < DAY_MS + 86_400_000}
    cells = occurrences_by_cell(messages, DAY, CUTOFF_MS)
    for cell in faults["deleted"]:
        del speed[cell]
    speed[faults["lowered"]] -= 1
    for cell in faults["duplicated"]:
        speed[cell] = len(cells[cell])
    batch = distinct_counts(cells, removed)
    causes = {cell: "late" for cell in late_cells_of(late, DAY)}
    causes |= {cell: "missing_in_speed" for cell in [*faults["deleted"], faults["lowered"]]}
    causes |= {cell: "duplicate" for cell in faults["duplicated"]}
    causes |= {cell: "after_cutoff" for cell in faults["after_cutoff"]}
    expected = {}
    for cell in speed.keys() | batch.keys():
        s, b = speed.get(cell, 0), batch.get(cell, 0)
        if s != b:
            expected[cell] = (s, b, causes.get(cell, "missing_in_archive"), catalog[cell[0]][0])
    return expected


def _reconcile_a_day(settings, env, folder) -> Reconciled:
    from storage.cassandra import connect
    from storage.reconciliations import read_summary
    from storage.s3 import client

    prefix = f"tests/{settings.views_topic}"
    output = f"s3a://{settings.s3_bucket}/{prefix}/batch"
    reconcile = ("reconcile", "--date", str(DAY), "--json", "--prefix", prefix)
    viewcount(env, "produce", "--events", "12000", "--seed", "23", "--day", str(DAY), "--videos", str(VIDEOS),
              "--late", "0", "--duplicates", "0.05", "--oracle", str(folder / "oracle"))
    _pipeline_run(env, folder)
    viewcount(env, "batch", "--date", str(DAY), "--output", output)
    catalog = write_catalog_csv(folder / "catalog.csv", VIDEOS)
    viewcount(env, "catalog", "load", str(folder / "catalog.csv"))
    clean = run_cli(env, *reconcile)

    cells = occurrences_by_cell(consume(settings, settings.views_topic), DAY, CUTOFF_MS)
    removed = remove_archive_file(settings, DAY, 12)
    touched = {cell for cell, found in cells.items() if any((p, o) in removed for p, o, _ in found)}
    faults = _choose_fault_cells(cells, touched, catalog)
    _inject_late_views(settings, faults)
    _pipeline_run(env, folder, "--max-offsets-per-trigger", "10")
    rewrite_speed_cells(settings, DAY, faults["deleted"], {
        faults["lowered"]: len({e for _, _, e in cells[faults["lowered"]]}) - 1,
        **{cell: len(cells[cell]) for cell in faults["duplicated"]}})
    viewcount(env, "batch", "--date", str(DAY), "--output", output, "--allow-gaps")
    faulted = run_cli(env, *reconcile)

    session, s3 = connect(settings), client(settings)
    try:
        stored = read_summary(session, DAY)
    finally:
        session.cluster.shutdown()
    objects = {name: s3.get_object(Bucket=settings.s3_bucket, Key=f"{prefix}/reports/day={DAY}/{name}")["Body"]
               .read().decode() for name in ("summary.json", "report.html")}
    return Reconciled(settings, env, prefix, catalog, clean, distinct_counts(cells), faulted,
                      _expected(settings, folder, faults, removed, catalog), removed, stored,
                      json.loads(objects["summary.json"]), objects["report.html"])


def test_a_clean_day_reconciles_with_no_divergent_cell(reconciled):
    assert reconciled.clean.returncode == 0, reconciled.clean.stderr[-3000:]
    summary = json.loads(reconciled.clean.stdout)

    views = sum(reconciled.clean_cells.values())
    assert (summary["status"], summary["cells_divergent"], summary["divergences"]) == ("pass", 0, [])
    assert (summary["cells_compared"], summary["views_speed"], summary["views_batch"]) == (
        len(reconciled.clean_cells), views, views)
    assert summary["archive_complete"] and summary["money_at_risk"] == {}


def test_each_fault_yields_exactly_its_cells_with_their_cause(reconciled):
    summary = json.loads(reconciled.faulted.stdout)

    assert divergences_by_cell(summary) == reconciled.expected
    causes = Counter(cause for _, _, cause, _ in reconciled.expected.values())
    assert summary["causes"] == {name: causes.get(name, 0) for name in summary["causes"]}
    assert (causes["late"], causes["missing_in_speed"], causes["duplicate"], causes["after_cutoff"]) == (2, 3, 2, 1)
    assert causes["missing_in_archive"] > 0


def test_billable_divergence_fails_with_exit_3_and_its_money_at_risk(reconciled):
    assert reconciled.faulted.returncode == 3, reconciled.faulted.stderr[-3000:]
    summary = json.loads(reconciled.faulted.stdout)

    billable = {cell: abs(s - b) for cell, (s, b, _, is_billable) in reconciled.expected.items() if is_billable}
    money = {}
    for (video, _), delta in billable.items():
        _, rate, currency = reconciled.catalog[video]
        money[currency] = money.get(currency, Decimal(0)) + rate * delta / 1000
    assert summary["status"] == "fail" and summary["billing_cells_divergent"] == len(billable)
    # Exact, per currency: the catalog's cells in both currencies diverge.
    assert {code: Decimal(amount) for code, amount in summary["money_at_risk"].items()} == money
    assert set(money) == {"EUR", "USD"}
    assert summary["gate"]["failing_cells"] == sum(
        1 for s, b, cause, is_billable in reconciled.expected.values() if is_billable and cause not in ACCEPTED)


def test_the_json_summary_has_every_contract_field(reconciled):
    summary = json.loads(reconciled.faulted.stdout)

    for name, kind in CONTRACT.items():
        assert isinstance(summary[name], kind), name
    assert set(summary["causes"]) == {"late", "duplicate", "missing_in_speed", "missing_in_archive", "after_cutoff",
                                      "other"}
    for divergence in summary["divergences"]:
        assert {"video_id", "minute", "speed", "batch", "delta", "cause", "billable"} <= set(divergence)
        assert divergence["delta"] == divergence["speed"] - divergence["batch"]
    bucket = reconciled.settings.s3_bucket
    assert summary["report_uri"] == f"s3://{bucket}/{reconciled.prefix}/reports/day={DAY}/report.html"
    assert summary["abs_delta_views"] == sum(abs(s - b) for s, b, _, _ in reconciled.expected.values())


def test_the_archive_gap_is_listed_with_its_offsets(reconciled):
    summary = json.loads(reconciled.faulted.stdout)

    # The archiver writes a micro-batch's hour as one file per core, so the removed file
    # may hold records of several partitions: one gap each, a run of consecutive offsets.
    by_partition: dict[int, list[int]] = {}
    for partition, offset in reconciled.removed:
        by_partition.setdefault(partition, []).append(offset)
    expected = [{"partition": partition, "first_offset": min(offsets), "last_offset": max(offsets),
                 "records": len(offsets)} for partition, offsets in sorted(by_partition.items())]
    assert all(gap["last_offset"] - gap["first_offset"] + 1 == gap["records"] for gap in expected)
    assert sorted(summary["archive_gaps"], key=lambda gap: gap["partition"]) == expected
    # The batch was run with --allow-gaps over those gaps: the gate says so, whatever the cells.
    assert summary["gate"]["batch_gaps"] == len(summary["batch_gaps_accepted"]) == len(by_partition)
    assert {line.split(":")[0] for line in summary["batch_gaps_accepted"]} == {
        f"partition {partition}" for partition in by_partition}
    assert not summary["gate"]["gaps_accepted_at_reconcile"] and "--accept-gaps" in summary["gate"]["reason"]
    assert "not accepted at reconcile time" in reconciled.report_html


def test_the_summary_is_stored_in_cassandra_and_beside_the_report(reconciled):
    printed = json.loads(reconciled.faulted.stdout)
    summary = {name: field for name, field in printed.items() if name not in PRINTED_ONLY}

    # The day's restatements are printed beside the summary, never stored in it.
    assert printed["restatements"] == [] and printed["restatement_request"] is None
    assert reconciled.stored == summary and reconciled.s3_summary == summary
    assert reconciled.report_html.startswith("<!doctype html>") and "<svg" in reconciled.report_html
    assert "FAIL" in reconciled.report_html and "missing_in_archive" in reconciled.report_html


def test_a_day_without_a_batch_version_is_a_one_line_error(reconciled):
    result = run_cli(reconciled.env, "reconcile", "--date", "2026-11-01")

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("viewcount reconcile: error: day 2026-11-01 has no batch version: "
                             "run `viewcount batch --date 2026-11-01` first\n")


def test_the_catalog_shows_what_was_loaded(reconciled):
    video = next(video for video, (billable, _, _) in reconciled.catalog.items() if billable)

    result = run_cli(reconciled.env, "catalog", "show", video, "nope")

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{video}: billable, rate {reconciled.catalog[video][1]} {reconciled.catalog[video][2]} per 1,000, "
        f"Video {video}",
        "nope: not in the catalog"]
