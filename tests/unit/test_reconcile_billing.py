"""Rates, tolerances and the gate; the summary's contract fields; the HTML report."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from settings.environment import ReconcileKnobs
from reconcile.billing import bill
from reconcile.tolerances import Tolerances
from reconcile.compare import Totals
from reconcile.completeness import Gap, PartitionCompleteness
from reconcile.report import render
from reconcile.summary import build_summary, figures_of
from storage.reconciliations import money_text

UTC = dt.timezone.utc
M = dt.datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
CONTRACT = {"day", "status", "cells_compared", "cells_divergent", "billing_cells_divergent", "views_speed",
            "views_batch", "abs_delta_views", "money_at_risk", "causes", "divergences", "report_uri"}
EVIDENCE = dict(archived_ids=0, counted_ids=0, late_ids=0, unconsumed_ids=0, gap_counted_ids=0, repeats_total=0)
# video, speed, batch, cause
CELLS = [
    ("paid", 90, 100, "late"),  # accepted by design
    ("paid", 0, 4, "missing_in_speed"),  # fails: billable, beyond the exact tolerance
    ("free", 200, 100, "duplicate"),  # non-billable, beyond 10 + 1%: reported, never fails
    ("free", 105, 100, "other"),  # non-billable, within tolerance
    ("unknown", 3, 2, "duplicate"),  # not in the catalog: billable at rate 0
]


CATALOG = [("paid", True, "2.5", "EUR"), ("free", False, "9.0", "USD")]


def billed(spark, tolerances=Tolerances(), cells=CELLS, catalog_rows=CATALOG):
    rows = [(video, M + dt.timedelta(minutes=i), speed, batch, speed - batch, cause, *EVIDENCE.values())
            for i, (video, speed, batch, cause) in enumerate(cells)]
    classified = spark.createDataFrame(rows, "video_id string, minute timestamp, speed long, batch long, "
                                             "delta long, cause string, " + ", ".join(f"{k} long" for k in EVIDENCE))
    catalog = spark.createDataFrame(catalog_rows, "video_id string, billable boolean, rate_per_1000 string, "
                                                  "currency string").selectExpr(
        "video_id", "billable", "cast(rate_per_1000 as decimal(18, 6)) as rate_per_1000", "currency")
    return bill(classified, catalog, tolerances)


def test_money_and_the_gate_come_from_billable_cells_beyond_tolerance(spark):
    figures = figures_of(billed(spark))

    assert figures.billing_cells_divergent == 3  # both paid cells and the unknown video
    assert figures.money_at_risk == {"EUR": Decimal("0.035")}  # (10 + 4) x 2.5 / 1000; the unknown video: 0
    assert figures.failing_by_cause == {"late": 0, "duplicate": 1, "missing_in_speed": 1,
                                        "missing_in_archive": 0, "after_cutoff": 0, "other": 0}
    assert (figures.nonbillable_cells_beyond_tolerance, figures.videos_not_in_catalog) == (1, 1)
    assert figures.causes == {"late": 1, "duplicate": 2, "missing_in_speed": 1, "missing_in_archive": 0,
                              "after_cutoff": 0, "other": 1}
    assert [d["video_id"] for d in figures.divergences] == ["free", "paid", "free", "paid", "unknown"]


def test_views_that_arrived_after_the_cutoff_are_priced_but_do_not_fail_the_gate(spark):
    cells = [("paid", 104, 100, "after_cutoff"), ("paid", 6, 5, "other")]

    figures = figures_of(billed(spark, cells=cells))

    assert figures.billing_cells_divergent == 2 and figures.money_at_risk == {"EUR": Decimal("0.0125")}
    assert figures.causes["after_cutoff"] == 1
    assert figures.failing_by_cause == {"late": 0, "duplicate": 0, "missing_in_speed": 0,
                                        "missing_in_archive": 0, "after_cutoff": 0, "other": 1}


def test_a_billable_tolerance_lets_small_divergences_pass(spark):
    figures = figures_of(billed(spark, Tolerances(billable_abs=4)))

    assert figures.failing_cells == 0 and figures.billing_cells_divergent == 1  # only the late cell (10)
    assert figures.money_at_risk == {"EUR": Decimal("0.025")}


def test_money_is_exact_and_summed_per_currency_never_across(spark):
    catalog = [("paid", True, "0.000001", "EUR"), ("dollar", True, "1234567.123456", "USD"),
               ("old", True, "3", None)]  # loaded before currencies were kept
    cells = [("paid", 1, 4, "missing_in_speed"), ("dollar", 7, 0, "other"), ("dollar", 0, 1, "other"),
             ("old", 2, 1, "other")]

    summary = build_summary(day="2026-11-20", version=1, totals=Totals(4, 4, 10, 6, 12, [0] * 24, [0] * 24),
                            figures=figures_of(billed(spark, cells=cells, catalog_rows=catalog)),
                            tolerances=Tolerances(), archive=[], report_uri="s3://b/r.html", extra={})

    # 3 x 0.000001 / 1000 and 8 x 1234567.123456 / 1000, to the last digit, as decimal strings.
    assert summary["money_at_risk"] == {"EUR": "0.000000003", "USD": "9876.536987648", "XXX": "0.003000000"}
    assert money_text(summary["money_at_risk"]) == "0.000000003 EUR, 9876.536987648 USD, 0.003 XXX"
    assert money_text({}) == "0"


def summary_of(spark):
    figures = figures_of(billed(spark))
    totals = Totals(10, 5, 398, 306, 126, [0] * 3 + [398] + [0] * 20, [0] * 3 + [306] + [0] * 20)
    archive = [PartitionCompleteness(0, 0, 10, 8, 10, [Gap(0, 3, 4)])]
    summary = build_summary(day="2026-11-20", version=2, totals=totals, figures=figures, tolerances=Tolerances(),
                            archive=archive, report_uri="s3://b/reports/day=2026-11-20/report.html", extra={})
    return summary, figures, totals


def test_the_summary_has_every_contract_field_and_says_why_it_failed(spark):
    summary, _, _ = summary_of(spark)

    assert CONTRACT <= set(summary) and summary["status"] == "fail"
    assert set(summary["divergences"][0]) >= {"video_id", "minute", "speed", "batch", "delta", "cause", "billable"}
    assert summary["divergences"][0]["minute"] == "2026-11-20T03:02:00Z"
    assert "2 billable cells diverge beyond tolerance" in summary["gate"]["reason"]
    assert summary["archive_gaps"] == [{"partition": 0, "first_offset": 3, "last_offset": 4, "records": 2}]


def test_the_report_is_one_self_contained_html_file(spark):
    summary, figures, totals = summary_of(spark)

    html = render(summary, figures, totals.speed_by_hour, totals.batch_by_hour)

    assert html.startswith("<!doctype html>") and html.count("<svg") == 3
    assert not re.search(r"(src|href)=|<script|@import|url\(", html)
    assert "FAIL" in html and "missing_in_speed" in html and "first missing" in html


def test_a_batch_version_counted_over_gaps_fails_the_gate_unless_accepted_again():
    """No divergence at all (the lost views are missing from both layers), yet the batch
    accepted archive gaps: the day fails unless reconcile accepts them, and says why."""
    from reconcile.summary import Figures

    totals = Totals(10, 0, 300, 300, 0, [0] * 24, [0] * 24)
    gaps = ["partition 4: offsets 756-783 missing"]

    def summary(accept_gaps: bool) -> dict:
        return build_summary(day="2026-11-20", version=2, totals=totals, figures=Figures(), tolerances=Tolerances(),
                             archive=[], report_uri="s3://b/r.html", extra={}, batch_gaps=gaps,
                             accept_gaps=accept_gaps)

    refused, accepted = summary(False), summary(True)
    without_gaps = build_summary(day="2026-11-20", version=2, totals=totals, figures=Figures(),
                                 tolerances=Tolerances(), archive=[], report_uri="s3://b/r.html", extra={})

    assert (refused["status"], accepted["status"], without_gaps["status"]) == ("fail", "pass", "pass")
    assert "counted over 1 archive gaps (--allow-gaps)" in refused["gate"]["reason"]
    assert "--accept-gaps" in refused["gate"]["reason"] and "accepted at reconcile time" in accepted["gate"]["reason"]
    assert (refused["gate"]["batch_gaps"], refused["gate"]["gaps_accepted_at_reconcile"]) == (1, False)
    assert accepted["gate"]["gaps_accepted_at_reconcile"] and refused["batch_gaps_accepted"] == gaps
    html = render(refused, Figures(), totals.speed_by_hour, totals.batch_by_hour)
    assert "not accepted at reconcile time: the gate fails" in html and "offsets 756-783 missing" in html


def test_loosened_billable_tolerances_are_in_the_gate_the_text_and_the_report(monkeypatch):
    """Billable tolerances looser than exact, from a flag or VIEWCOUNT_RECONCILE_BILLABLE_*,
    are kept in the summary's gate and shown first; loosened non-billable ones are not."""
    from reconcile.summary import Figures, human_text
    from reconcile.tolerances import tolerances_from

    monkeypatch.setenv("VIEWCOUNT_RECONCILE_BILLABLE_REL", "0.01")
    totals = Totals(10, 0, 300, 300, 0, [0] * 24, [0] * 24)

    def summary(tolerances: Tolerances) -> dict:
        return build_summary(day="2026-11-20", version=2, totals=totals, figures=Figures(), tolerances=tolerances,
                             archive=[], report_uri="s3://b/r.html", extra={})

    knobs = ReconcileKnobs.from_env()
    from_env, from_flag = tolerances_from({}, knobs), tolerances_from({"billable_abs": 3.0, "billable_rel": 0.0}, knobs)
    loosened, flagged = summary(from_env), summary(from_flag)
    exact = summary(Tolerances(nonbillable_abs=100.0))

    assert loosened["gate"]["billable_tolerances_loosened"] == {"billable_rel": 0.01}
    assert flagged["gate"]["billable_tolerances_loosened"] == {"billable_abs": 3.0}
    assert exact["gate"]["billable_tolerances_loosened"] == {}
    assert loosened["status"] == "pass"
    assert ("billable tolerances looser than exact (abs 0, rel 0.01): a promotion of this version is recorded as "
            "an override") in loosened["gate"]["reason"]
    assert "LOOSENED GATE: billable tolerances looser than exact (abs 0, rel 0.01)" in human_text(loosened)
    assert "LOOSENED" not in human_text(exact) and "looser" not in exact["gate"]["reason"]
    html = render(flagged, Figures(), totals.speed_by_hour, totals.batch_by_hour)
    assert "LOOSENED GATE" in html and "Gated with billable tolerances looser than exact (abs 3, rel 0)" in html
    assert "LOOSENED GATE" not in render(exact, Figures(), totals.speed_by_hour, totals.batch_by_hour)
