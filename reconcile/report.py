"""The reconciliation report a person opens: one self-contained HTML file, drawn by the
Jinja2 template ``reconcile/templates/report.html`` (autoescaped) from the tables and chart
geometry laid out here.

No script, no stylesheet or font from elsewhere: the charts are inline SVG, so the file
reads the same from S3, a mail attachment or an air-gapped laptop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jinja2

from reconcile.causes import CAUSES
from reconcile.restated import RestatedVersion
from reconcile.summary import Figures, loosened_text
from storage.reconciliations import money_text
from storage.restatements import Restatement, by_size

COLORS = {"late": "#8c9eff", "duplicate": "#ffb74d", "missing_in_speed": "#e57373",
          "missing_in_archive": "#ba68c8", "after_cutoff": "#4db6ac", "other": "#90a4ae", "speed": "#4fc3f7", "batch": "#1565c0"}
ROWS_SHOWN = 200
RESTATED_ROWS_SHOWN = 50  # videos of a restatement, by |delta|
VIDEO_DELTA_HEADERS = ["video", "old views", "new views", "delta", "money"]


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list]


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("reconcile", "templates"), autoescape=True,
                                     trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters.update(fmt=format, number=_number, money=money_text)
    environment.globals["colors"] = COLORS
    return environment.get_template("report.html")


def bar_chart(labels: list[str], series: dict[str, list[float]], *, stacked: bool, height: int = 220) -> dict:
    """Vertical bars per label, one colour per series (grouped side by side, or stacked)."""
    width, left, bottom = 1000, 60, 24
    plot_w, plot_h = width - left - 10, height - bottom - 10
    totals = [sum(values[i] for values in series.values()) if stacked else max(v[i] for v in series.values())
              for i in range(len(labels))]
    top = max(totals + [1])
    slot = plot_w / max(len(labels), 1)
    bar_w = slot * 0.8 / (1 if stacked else max(len(series), 1))
    groups = []
    for i, label in enumerate(labels):
        x, base, bars = left + i * slot + slot * 0.1, 10 + plot_h, []
        for j, (name, values) in enumerate(series.items()):
            h = plot_h * values[i] / top
            bars.append({"name": name, "value": values[i], "x": x if stacked else x + j * bar_w, "y": base - h,
                         "width": bar_w, "height": h})
            if stacked:
                base -= h
        groups.append({"label": label, "x": x + slot * 0.4, "bars": bars})
    return {"width": width, "height": height, "left": left, "axis_y": 10 + plot_h, "top": top, "groups": groups,
            "series": list(series)}


def horizontal_bars(values: dict[str, float]) -> dict:
    """One bar per name, longest = full width, value written beside it."""
    width, row_h, label_w = 1000, 26, 170
    top = max(list(values.values()) + [1])
    rows = [{"name": name, "value": value, "y": i * row_h + 2, "width": (width - label_w - 120) * value / top}
            for i, (name, value) in enumerate(values.items())]
    return {"width": width, "height": row_h * len(values) + 4, "row_height": row_h, "label_width": label_w,
            "rows": rows}


def _hourly(figures: Figures) -> dict[str, list[float]]:
    series = {name: [0.0] * 24 for name in CAUSES}
    for row in figures.by_hour:
        series[row["cause"]][row["hour"]] += row["abs_delta"]
    return {name: values for name, values in series.items() if any(values)} or {"other": [0.0] * 24}


def _archive(summary: dict) -> dict:
    rows = [[p["partition"], p["kafka_first"], p["kafka_end"], p["kafka_end"] - p["kafka_first"], p["archived"],
             p["archive_hours_records"], p["gaps"]] for p in summary["archive"]]
    gaps = [[g["partition"], g["first_offset"], g["last_offset"], g["records"]] for g in summary["archive_gaps"]]
    verdict = ("complete: every offset Kafka holds for the window is archived" if summary["archive_complete"]
               else f"{summary['archive_gaps_total']:,} gaps: offsets Kafka holds that the archive lacks")
    return {"archive_verdict": verdict,
            "archive": Table(["partition", "Kafka first", "Kafka end", "Kafka records", "archived",
                              "archive_hours says", "gaps"], rows),
            "archive_gaps": Table(["partition", "first missing", "last missing", "records"], gaps)}


def _batch_gaps(summary: dict) -> dict:
    """The archive gaps the batch version was counted over (``viewcount batch --allow-gaps``)."""
    gaps = summary.get("batch_gaps_accepted") or []
    verdict = ("accepted again at reconcile time (--accept-gaps)" if summary["gate"].get("gaps_accepted_at_reconcile")
               else "not accepted at reconcile time: the gate fails")
    return {"batch_gaps": Table(["gap the batch accepted"], [[gap] for gap in gaps]) if gaps else None,
            "batch_gaps_verdict": verdict}


def _restamped(summary: dict) -> dict:
    """Event ids the batch counted in more than one minute cell: retries whose event_time
    a client re-stamped, counted once per minute by the rules, in both layers alike."""
    events = summary.get("restamped_events")
    text = None if events is None else (
        f"{events:,} event ids counted in more than one minute cell, "
        f"{summary.get('restamped_extra_views') or 0:,} views beyond one each "
        "(counted by the rules in both layers, so no divergence shows them; a client that re-stamps "
        "its retries is over-counted).")
    sample = summary.get("restamped_sample") or []
    return {"restamped": text, "restamped_sample": Table(["video_id/event_id: cells"], [[item] for item in sample])}


def _video_money(video) -> str:
    return money_text({video.currency: video.money_delta}) if video.money_delta is not None else "-"


def _video_deltas(videos) -> Table:
    return Table(VIDEO_DELTA_HEADERS,
                 [[v.video_id, v.old_views, v.new_views, f"{v.delta:+,}", _video_money(v)] for v in videos])


def _restatements(restated: RestatedVersion | None, records: tuple[Restatement, ...]) -> dict:
    """What promoting the reconciled version restates (it was computed against the promoted
    ``restated.against``), and the day's earlier restatement records, newest first."""
    missing = (f" {restated.videos_not_in_catalog:,} changed videos are not in the catalog: their money is "
               "not known." if restated is not None and restated.videos_not_in_catalog else "")
    return {
        "restated": restated,
        "restated_not_in_catalog": missing,
        "restated_videos": _video_deltas(restated.videos[:RESTATED_ROWS_SHOWN]) if restated is not None else None,
        "records": Table(["restated at", "versions", "views delta", "videos", "money", "reason", "command"],
                         [[r.restated_at.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{r.old_version} -> {r.new_version}",
                           f"{r.views_delta:+,}", r.videos_changed, money_text(r.money_delta), r.reason, r.command]
                          for r in records]) if records else None,
        "record_videos": [(f"{record.restated_at:%Y-%m-%dT%H:%M:%SZ}", len(record.videos), _video_deltas(videos))
                          for record in records if (videos := by_size(record.videos)[:RESTATED_ROWS_SHOWN])],
    }


def render(summary: dict, figures: Figures, speed_by_hour: list[int], batch_by_hour: list[int], *,
           restated: RestatedVersion | None = None, records: tuple[Restatement, ...] = ()) -> str:
    """The whole HTML document of one reconciliation."""
    hours = [f"{h:02d}" for h in range(24)]
    kpis = [("cells compared", summary["cells_compared"]), ("divergent", summary["cells_divergent"]),
            ("billable divergent", summary["billing_cells_divergent"]), ("views speed", summary["views_speed"]),
            ("views batch", summary["views_batch"]), ("|delta| views", summary["abs_delta_views"]),
            ("money at risk", money_text(summary["money_at_risk"]))]
    top = [[v["video_id"], v["cells"], v["abs_delta"], v["speed"], v["batch"], "yes" if v["billable"] else "no",
            money_text({v["currency"]: v["money"]}) if v["currency"] else "-", ", ".join(v["causes"])]
           for v in figures.top_videos]
    cells = [[d["video_id"], d["minute"], d["speed"], d["batch"], d["delta"], d["cause"],
              "yes" if d["billable"] else "no"] for d in summary["divergences"][:ROWS_SHOWN]]
    return _template().render(
        summary=summary, status=summary["status"],
        loosened=(loosened_text(summary["tolerances"]) if summary["gate"].get("billable_tolerances_loosened")
                  else None),
        tolerances=", ".join(f"{k} {v:g}" for k, v in summary["tolerances"].items()),
        kpis=kpis,
        views_by_hour=bar_chart(hours, {"speed": speed_by_hour, "batch": batch_by_hour}, stacked=False),
        causes=horizontal_bars(summary["causes"]),
        divergence_by_hour=bar_chart(hours, _hourly(figures), stacked=True),
        top_videos=Table(["video", "cells", "|delta|", "speed", "batch", "billable", "money", "causes"], top),
        cells=Table(["video", "minute", "speed", "batch", "delta", "cause", "billable"], cells),
        listed=(f"largest {len(cells):,} of {summary['divergences_total']:,} by |delta| "
                f"(summary.json lists up to {summary['divergences_listed']:,})"),
        **_archive(summary), **_batch_gaps(summary), **_restamped(summary), **_restatements(restated, records),
    )
