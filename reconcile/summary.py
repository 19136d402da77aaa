"""The reconciliation summary: DESIGN's public contract, plus a few extra fields.

Contract fields (never renamed): day, status, cells_compared, cells_divergent,
billing_cells_divergent, views_speed, views_batch, abs_delta_views, money_at_risk,
causes{late, duplicate, missing_in_speed, missing_in_archive, after_cutoff, other},
divergences[{video_id, minute, speed, batch, delta, cause, billable}], report_uri.
``money_at_risk`` is an object, currency -> the exact amount as a decimal string
({"EUR": "0.035000000"}; {} when nothing is at risk): money is never summed across
currencies nor carried in floating point.

The divergences list is capped at MAX_DIVERGENCES cells, largest |delta| first (then
video_id, minute), so a bad day cannot produce a JSON of gigabytes; ``divergences_total``
says how many there were. Every count and total covers all cells, not only the listed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from storage.reconciliations import money_text

from reconcile.billing import ACCEPTED_CAUSES
from reconcile.tolerances import Tolerances
from reconcile.causes import CAUSES
from reconcile.compare import Totals
from reconcile.completeness import PartitionCompleteness, gap_dict

MAX_DIVERGENCES = 1_000
MAX_GAPS_LISTED = 1_000
TOP_VIDEOS = 20
RESTATED_VIDEOS_SHOWN = 10  # per restatement record, in the text for a person
MINUTE_FORMAT = "yyyy-MM-dd'T'HH:mm:ss'Z'"
EVIDENCE_FIELDS = ("archived_ids", "counted_ids", "late_ids", "unconsumed_ids", "gap_counted_ids", "repeats_total")


@dataclass
class Figures:
    """What the billed divergent cells add up to (all cells, not only the listed ones)."""

    causes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))
    billing_cells_divergent: int = 0
    money_at_risk: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount
    failing_by_cause: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))
    nonbillable_cells_beyond_tolerance: int = 0
    videos_not_in_catalog: int = 0
    divergences: list[dict] = field(default_factory=list)
    by_hour: list[dict] = field(default_factory=list)  # hour, cause, cells, abs_delta
    top_videos: list[dict] = field(default_factory=list)

    @property
    def failing_cells(self) -> int:
        return sum(self.failing_by_cause.values())


def _divergence(row) -> dict:
    return {"video_id": row.video_id, "minute": row.minute_text, "speed": row.speed, "batch": row.batch,
            "delta": row.delta, "cause": row.cause, "billable": row.billable,
            "evidence": {name: row[name] for name in EVIDENCE_FIELDS}}


def _money_by_currency(billed: DataFrame) -> dict[str, Decimal]:
    """The money of the billing cells (billable, beyond tolerance) per currency, exact."""
    rows = (billed.filter(F.col("billable") & F.col("beyond_tolerance") & F.col("currency").isNotNull())
            .groupBy("currency").agg(F.sum("money").alias("money")).collect())
    return {row.currency: row.money for row in sorted(rows, key=lambda row: row.currency)}


def money_json(amounts: dict[str, Decimal]) -> dict[str, str]:
    """Amounts as the summary holds them: currency -> the exact decimal, as a string."""
    return {currency: format(amount, "f") for currency, amount in amounts.items()}


def figures_of(billed: DataFrame) -> Figures:
    """A few small aggregates over the billed divergent cells (persisted by the caller)."""
    cause, billable, beyond = F.col("cause"), F.col("billable"), F.col("beyond_tolerance")
    totals = billed.agg(
        *[F.count_if(cause == name).alias(f"cause_{name}") for name in CAUSES],
        *[F.count_if(F.col("fails_gate") & (cause == name)).alias(f"fails_{name}") for name in CAUSES],
        F.count_if(billable & beyond).alias("billing_cells_divergent"),
        F.count_if(~billable & beyond).alias("nonbillable_beyond"),
        F.count_distinct(F.when(~F.col("in_catalog"), F.col("video_id"))).alias("not_in_catalog"),
    ).first()
    figures = Figures(
        causes={name: totals[f"cause_{name}"] for name in CAUSES},
        billing_cells_divergent=totals.billing_cells_divergent,
        money_at_risk=_money_by_currency(billed),
        failing_by_cause={name: totals[f"fails_{name}"] for name in CAUSES},
        nonbillable_cells_beyond_tolerance=totals.nonbillable_beyond,
        videos_not_in_catalog=totals.not_in_catalog,
    )
    listed = (billed.orderBy(F.abs("delta").desc(), "video_id", "minute").limit(MAX_DIVERGENCES)
              .withColumn("minute_text", F.date_format("minute", MINUTE_FORMAT)))
    figures.divergences = [_divergence(row) for row in listed.collect()]
    figures.by_hour = [row.asDict() for row in billed.groupBy(F.hour("minute").alias("hour"), "cause").agg(
        F.count(F.lit(1)).alias("cells"), F.sum(F.abs("delta")).alias("abs_delta")).collect()]
    figures.top_videos = [row.asDict() for row in billed.groupBy("video_id").agg(
        F.count(F.lit(1)).alias("cells"), F.sum(F.abs("delta")).alias("abs_delta"),
        F.sum("speed").alias("speed"), F.sum("batch").alias("batch"), F.max("billable").alias("billable"),
        F.sum("money").alias("money"), F.max("currency").alias("currency"),
        F.array_sort(F.collect_set("cause")).alias("causes"),
    ).orderBy(F.col("abs_delta").desc(), "video_id").limit(TOP_VIDEOS).collect()]
    return figures


def gate_reason(figures: Figures, tolerances: Tolerances, batch_gaps: list[str] | None = None,
                accept_gaps: bool = False) -> str:
    reasons = []
    if figures.failing_cells:
        causes = ", ".join(f"{name} {count:,}" for name, count in figures.failing_by_cause.items() if count)
        reasons.append(f"{figures.failing_cells:,} billable cells diverge beyond tolerance (abs "
                       f"{tolerances.billable_abs:g}, rel {tolerances.billable_rel:g}) for causes not accepted: {causes}")
    if batch_gaps and not accept_gaps:
        reasons.append(f"the batch version was counted over {len(batch_gaps):,} archive gaps (--allow-gaps): views "
                       "missing from both the archive and the speed table cannot show as divergences; reconcile "
                       "with --accept-gaps to accept them for billing")
    if reasons:
        return "; and ".join(reasons)
    accepted = figures.billing_cells_divergent
    also = (f"; {len(batch_gaps):,} archive gaps of the batch version accepted at reconcile time (--accept-gaps)"
            if batch_gaps else "")
    if tolerances.billable_loosened():
        also += f"; {loosened_text(tolerances.as_dict())}: a promotion of this version is recorded as an override"
    return (f"no billable cell diverges beyond tolerance for a cause not accepted "
            f"({accepted:,} billable cells diverge for accepted causes: {', '.join(ACCEPTED_CAUSES)}){also}")


def loosened_text(tolerances: dict[str, float]) -> str:
    """'billable tolerances looser than exact (abs 5, rel 0)', for a summary's tolerances."""
    return (f"billable tolerances looser than exact (abs {tolerances['billable_abs']:g}, "
            f"rel {tolerances['billable_rel']:g})")


def build_summary(*, day: str, version: int, totals: Totals, figures: Figures, tolerances: Tolerances,
                  archive: list[PartitionCompleteness], report_uri: str, extra: dict,
                  batch_gaps: list[str] | None = None, accept_gaps: bool = False) -> dict:
    """The contract dict, contract fields first. A batch version counted over archive gaps
    (``batch_gaps``, accepted by ``viewcount batch --allow-gaps``) fails the gate unless
    they are accepted again here (``accept_gaps``): views lost from both the archive and
    the speed table agree with each other and leave no divergence to see."""
    gaps = [gap_dict(gap) for partition in archive for gap in partition.gaps]
    batch_gaps = list(batch_gaps or [])
    unaccepted_gaps = bool(batch_gaps) and not accept_gaps
    return {
        "day": day,
        "status": "fail" if figures.failing_cells or unaccepted_gaps else "pass",
        "cells_compared": totals.cells_compared,
        "cells_divergent": totals.cells_divergent,
        "billing_cells_divergent": figures.billing_cells_divergent,
        "views_speed": totals.views_speed,
        "views_batch": totals.views_batch,
        "abs_delta_views": totals.abs_delta_views,
        "money_at_risk": money_json(figures.money_at_risk),
        "causes": figures.causes,
        "divergences": figures.divergences,
        "report_uri": report_uri,
        "batch_version": version,
        "divergences_total": totals.cells_divergent,
        "divergences_listed": len(figures.divergences),
        "gate": {"failing_cells": figures.failing_cells, "failing_by_cause": figures.failing_by_cause,
                 "accepted_causes": list(ACCEPTED_CAUSES),
                 "batch_gaps": len(batch_gaps), "gaps_accepted_at_reconcile": bool(batch_gaps) and accept_gaps,
                 "billable_tolerances_loosened": tolerances.billable_loosened(),
                 "reason": gate_reason(figures, tolerances, batch_gaps, accept_gaps)},
        "tolerances": tolerances.as_dict(),
        "nonbillable_cells_beyond_tolerance": figures.nonbillable_cells_beyond_tolerance,
        "videos_not_in_catalog": figures.videos_not_in_catalog,
        "archive_complete": not gaps,
        "archive_gaps": gaps[:MAX_GAPS_LISTED],
        "archive_gaps_total": len(gaps),
        "archive": [partition.as_dict() | {"gaps": len(partition.gaps)} for partition in archive],
        "batch_gaps_accepted": batch_gaps,
        **extra,
    }


def human_text(summary: dict) -> str:
    """The summary for a person at a terminal."""
    causes = ", ".join(f"{name} {count:,}" for name, count in summary["causes"].items() if count) or "none"
    lines = [
        f"day {summary['day']} (batch version {summary['batch_version']}): {summary['status'].upper()}",
        f"  cells compared {summary['cells_compared']:,}, divergent {summary['cells_divergent']:,} ({causes})",
        f"  views speed {summary['views_speed']:,}, batch {summary['views_batch']:,}, "
        f"|delta| {summary['abs_delta_views']:,}",
        f"  billable cells divergent {summary['billing_cells_divergent']:,}, money at risk "
        f"{money_text(summary['money_at_risk'])}",
        f"  gate: {summary['gate']['reason']}",
        *([f"  LOOSENED GATE: {loosened_text(summary['tolerances'])}; exact is abs 0, rel 0"]
          if summary["gate"].get("billable_tolerances_loosened") else []),
        f"  archive: {'complete' if summary['archive_complete'] else str(summary['archive_gaps_total']) + ' gaps'}",
    ]
    for divergence in summary["divergences"][:10]:
        lines.append(f"    {divergence['video_id']} {divergence['minute']} speed {divergence['speed']:,} "
                     f"batch {divergence['batch']:,} ({divergence['cause']}"
                     f"{', billable' if divergence['billable'] else ''})")
    if summary["divergences_total"] > 10:
        lines.append(f"    ... and {summary['divergences_total'] - 10:,} more divergent cells (the JSON summary "
                     f"lists the largest {summary['divergences_listed']:,})")
    lines.append(f"  report: {summary['report_uri']}")
    return "\n".join(lines + restatement_lines(summary))


def restatement_lines(printed: dict) -> list[str]:
    """The day's restatement records and open request, as ``viewcount reconcile`` prints
    them beside the summary (``reconcile.restated``); none when the day has neither."""
    records, request = printed.get("restatements") or [], printed.get("restatement_request")
    if not records and not request:
        return []
    lines = [f"  restatements: {len(records):,}"]
    if request:
        lines.append(f"    request {request['status']} since {request['detected_at']} (serving version "
                     f"{request['served_version']}): {request['reason']}"
                     + (f"; {request['detail']}" if request.get("detail") else ""))
    for record in records:
        lines.append(f"    {record['restated_at']}: version {record['old_version']} -> {record['new_version']}, "
                     f"views {record['views_delta']:+,} over {record['videos_changed']:,} videos, money "
                     f"{money_text(record['money_delta'])}; {record['reason']}")
        videos = sorted(record["videos"], key=lambda video: (-abs(video["delta"]), video["video_id"]))
        for video in videos[:RESTATED_VIDEOS_SHOWN]:
            money = (f", {money_text({video['currency']: video['money_delta']})}"
                     if video.get("money_delta") is not None else "")
            lines.append(f"      {video['video_id']} {video['old_views']:,} -> {video['new_views']:,} "
                         f"({video['delta']:+,}{money})")
        if len(videos) > RESTATED_VIDEOS_SHOWN:
            lines.append(f"      ... and {len(videos) - RESTATED_VIDEOS_SHOWN:,} more videos")
    return lines
