"""The reconciliation report a person opens: one self-contained HTML file.

No script, no stylesheet or font from elsewhere: the charts are inline SVG drawn here, so
the file reads the same from S3, a mail attachment or an air-gapped laptop.
"""

from __future__ import annotations

from html import escape

from storage.reconciliations import money_text

from storage.restatements import Restatement

from reconcile.causes import CAUSES
from reconcile.restated import RestatedVersion, by_size
from reconcile.summary import Figures, loosened_text

COLORS = {"late": "#8c9eff", "duplicate": "#ffb74d", "missing_in_speed": "#e57373",
          "missing_in_archive": "#ba68c8", "after_cutoff": "#4db6ac", "other": "#90a4ae", "speed": "#4fc3f7", "batch": "#1565c0"}
ROWS_SHOWN = 200
LOOSENED_BADGE = ' <span class="badge loosened">LOOSENED GATE</span>'
RESTATED_ROWS_SHOWN = 50  # videos of a restatement, by |delta|
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:.2em .8em;border-radius:1em;color:#fff;font-weight:600}
.pass{background:#2e7d32} .fail{background:#c62828} .loosened{background:#ef6c00}
.warning{border-left:.4em solid #ef6c00;background:#fff3e0;padding:.6em 1em}
table{border-collapse:collapse;width:100%;margin:.5em 0} td,th{padding:.25em .6em;border-bottom:1px solid #eee;
text-align:right} td:first-child,th:first-child{text-align:left} .kpi{display:flex;gap:2em;flex-wrap:wrap}
.kpi div{background:#f5f5f5;padding:.6em 1em;border-radius:.4em} .kpi b{display:block;font-size:1.3em}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}
"""


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_number(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _legend(names: list[str]) -> str:
    return '<div class="legend">' + "".join(
        f'<span style="background:{COLORS[name]}"></span>{escape(name)}' for name in names) + "</div>"


def bar_chart(labels: list[str], series: dict[str, list[float]], *, stacked: bool, height: int = 220) -> str:
    """Vertical bars per label, one colour per series (grouped side by side, or stacked)."""
    width, left, bottom = 1000, 60, 24
    plot_w, plot_h = width - left - 10, height - bottom - 10
    totals = [sum(values[i] for values in series.values()) if stacked else max(v[i] for v in series.values())
              for i in range(len(labels))]
    top = max(totals + [1])
    slot = plot_w / max(len(labels), 1)
    bar_w = slot * 0.8 / (1 if stacked else max(len(series), 1))
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img">',
             f'<text x="{left - 6}" y="14" text-anchor="end" font-size="11">{top:,.0f}</text>',
             f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 10}" y2="{10 + plot_h}" stroke="#999"/>']
    for i, label in enumerate(labels):
        x, base = left + i * slot + slot * 0.1, 10 + plot_h
        for j, (name, values) in enumerate(series.items()):
            h = plot_h * values[i] / top
            bar_x = x if stacked else x + j * bar_w
            tip = f"{escape(label)} {escape(name)}: {values[i]:,.0f}"
            parts.append(f'<rect x="{bar_x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{COLORS[name]}"><title>{tip}</title></rect>')
            if stacked:
                base -= h
        parts.append(f'<text x="{x + slot * 0.4:.1f}" y="{height - 6}" text-anchor="middle" font-size="11">'
                     f'{escape(label)}</text>')
    return "".join(parts) + "</svg>" + _legend(list(series))


def horizontal_bars(values: dict[str, float]) -> str:
    """One bar per name, longest = full width, value written beside it."""
    width, row_h, label_w = 1000, 26, 170
    top = max(list(values.values()) + [1])
    parts = [f'<svg viewBox="0 0 {width} {row_h * len(values) + 4}" width="100%" role="img">']
    for i, (name, value) in enumerate(values.items()):
        y, w = i * row_h + 2, (width - label_w - 120) * value / top
        parts += [f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="13">{escape(name)}</text>',
                  f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{COLORS[name]}"/>',
                  f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="13">{value:,.0f}</text>']
    return "".join(parts) + "</svg>"


def _hourly(figures: Figures) -> dict[str, list[float]]:
    series = {name: [0.0] * 24 for name in CAUSES}
    for row in figures.by_hour:
        series[row["cause"]][row["hour"]] += row["abs_delta"]
    return {name: values for name, values in series.items() if any(values)} or {"other": [0.0] * 24}


def _archive_section(summary: dict) -> str:
    rows = [[p["partition"], p["kafka_first"], p["kafka_end"], p["kafka_end"] - p["kafka_first"], p["archived"],
             p["archive_hours_records"], p["gaps"]] for p in summary["archive"]]
    gaps = [[g["partition"], g["first_offset"], g["last_offset"], g["records"]] for g in summary["archive_gaps"]]
    verdict = ("complete: every offset Kafka holds for the window is archived" if summary["archive_complete"]
               else f"{summary['archive_gaps_total']:,} gaps: offsets Kafka holds that the archive lacks")
    return (f"<p>{escape(verdict)}</p>"
            + _table(["partition", "Kafka first", "Kafka end", "Kafka records", "archived", "archive_hours says",
                      "gaps"], rows)
            + (_table(["partition", "first missing", "last missing", "records"], gaps) if gaps else ""))


def _batch_gaps_section(summary: dict) -> str:
    """The archive gaps the batch version was counted over (``viewcount batch --allow-gaps``)."""
    gaps = summary.get("batch_gaps_accepted") or []
    if not gaps:
        return ""
    verdict = ("accepted again at reconcile time (--accept-gaps)" if summary["gate"].get("gaps_accepted_at_reconcile")
               else "not accepted at reconcile time: the gate fails")
    return (f"<p>Batch version {summary['batch_version']} was counted over {len(gaps):,} archive gaps, "
            f"{escape(verdict)}. Views missing from both the archive and the speed table leave no divergence.</p>"
            + _table(["gap the batch accepted"], [[gap] for gap in gaps]))


def _restamped_section(summary: dict) -> str:
    """Event ids the batch counted in more than one minute cell: retries whose event_time
    a client re-stamped, counted once per minute by the rules, in both layers alike."""
    events = summary.get("restamped_events")
    if events is None:
        return ""
    text = (f"{events:,} event ids counted in more than one minute cell, "
            f"{summary.get('restamped_extra_views') or 0:,} views beyond one each "
            "(counted by the rules in both layers, so no divergence shows them; a client that re-stamps "
            "its retries is over-counted).")
    sample = summary.get("restamped_sample") or []
    return (f"<h2>Re-stamped retries</h2><p>{escape(text)}</p>"
            + (_table(["video_id/event_id: cells"], [[item] for item in sample]) if sample else ""))


def _video_money(video) -> str:
    return money_text({video.currency: video.money_delta}) if video.money_delta is not None else "-"


def restatement_section(restated: RestatedVersion | None, records=()) -> str:
    """What promoting the reconciled version restates (it was computed against the promoted
    ``restated.against``), and the day's earlier restatement records, newest first."""
    parts = []
    if restated is not None:
        shown = restated.videos[:RESTATED_ROWS_SHOWN]
        missing = (f" {restated.videos_not_in_catalog:,} changed videos are not in the catalog: their money is "
                   "not known." if restated.videos_not_in_catalog else "")
        parts += [f"<h2>Restates version {restated.against}</h2>",
                  f"<p>Batch version {restated.version} was computed against version {restated.against}, "
                  f"promoted for the day; promoting it changes {len(restated.videos):,} videos by "
                  f"<b>{restated.views_delta:+,} views</b>, money {escape(money_text(restated.money_delta))} "
                  f"(at the catalog's rates, per currency).{escape(missing)}</p>",
                  f"<p>Largest {len(shown):,} of {len(restated.videos):,} videos by |delta|</p>",
                  _table(["video", "old views", "new views", "delta", "money"],
                         [[v.video_id, v.old_views, v.new_views, f"{v.delta:+,}", _video_money(v)] for v in shown])]
    if records:
        parts += ["<h2>Restatements of the day</h2>",
                  _table(["restated at", "versions", "views delta", "videos", "money", "reason", "command"],
                         [[r.restated_at.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{r.old_version} -> {r.new_version}",
                           f"{r.views_delta:+,}", r.videos_changed, money_text(r.money_delta), r.reason, r.command]
                          for r in records])]
        for record in records:
            videos = by_size(record.videos)[:RESTATED_ROWS_SHOWN]
            if videos:
                parts += [f"<p>{record.restated_at:%Y-%m-%dT%H:%M:%SZ}: largest {len(videos):,} of "
                          f"{len(record.videos):,} videos by |delta|</p>",
                          _table(["video", "old views", "new views", "delta", "money"],
                                 [[v.video_id, v.old_views, v.new_views, f"{v.delta:+,}", _video_money(v)]
                                  for v in videos])]
    return "".join(parts)


def _loosened_section(summary: dict) -> str:
    return (f'<p class="warning"><b>Gated with {escape(loosened_text(summary["tolerances"]))}</b> (exact is abs 0, '
            "rel 0): billable cells that differ within them passed, and a promotion of this version is an "
            "override, recorded in unreconciled_promotions with these tolerances and the command.</p>")


def render(summary: dict, figures: Figures, speed_by_hour: list[int], batch_by_hour: list[int], *,
           restated: RestatedVersion | None = None, records: tuple[Restatement, ...] = ()) -> str:
    """The whole HTML document of one reconciliation."""
    status, hours = summary["status"], [f"{h:02d}" for h in range(24)]
    loosened = summary["gate"].get("billable_tolerances_loosened")
    kpis = [("cells compared", summary["cells_compared"]), ("divergent", summary["cells_divergent"]),
            ("billable divergent", summary["billing_cells_divergent"]), ("views speed", summary["views_speed"]),
            ("views batch", summary["views_batch"]), ("|delta| views", summary["abs_delta_views"]),
            ("money at risk", money_text(summary["money_at_risk"]))]
    top = [[v["video_id"], v["cells"], v["abs_delta"], v["speed"], v["batch"], "yes" if v["billable"] else "no",
            money_text({v["currency"]: v["money"]}) if v["currency"] else "-", ", ".join(v["causes"])]
           for v in figures.top_videos]
    cells = [[d["video_id"], d["minute"], d["speed"], d["batch"], d["delta"], d["cause"],
              "yes" if d["billable"] else "no"] for d in summary["divergences"][:ROWS_SHOWN]]
    listed = (f"largest {len(cells):,} of {summary['divergences_total']:,} by |delta| "
              f"(summary.json lists up to {summary['divergences_listed']:,})")
    return "".join([
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>viewcount reconciliation {escape(summary['day'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>Reconciliation of {escape(summary['day'])} <span class=\"badge {status}\">{status.upper()}</span>"
        f"{LOOSENED_BADGE if loosened else ''}</h1>",
        f"<p>Speed table vs batch version {summary['batch_version']} vs Kafka offsets.</p>",
        _loosened_section(summary) if loosened else "",
        "<h2>Gate decision</h2>",
        f"<p><b>{status.upper()}</b>: {escape(summary['gate']['reason'])}.</p>",
        f"<p>Tolerances: {escape(', '.join(f'{k} {v:g}' for k, v in summary['tolerances'].items()))}. "
        f"Accepted causes: {escape(', '.join(summary['gate']['accepted_causes']))}. Videos not in the catalog "
        f"(treated as billable at rate 0): {summary['videos_not_in_catalog']:,}. Non-billable cells beyond "
        f"tolerance: {summary['nonbillable_cells_beyond_tolerance']:,}.</p>",
        _batch_gaps_section(summary),
        restatement_section(restated, records),
        '<h2>Speed vs batch</h2><div class="kpi">',
        "".join(f"<div>{escape(name)}<b>{_number(value)}</b></div>" for name, value in kpis), "</div>",
        "<p>Views per hour of event time</p>",
        bar_chart(hours, {"speed": speed_by_hour, "batch": batch_by_hour}, stacked=False),
        "<h2>Divergent cells by cause</h2>", horizontal_bars(summary["causes"]),
        "<h2>Divergence by hour (|delta| views, by cause)</h2>", bar_chart(hours, _hourly(figures), stacked=True),
        "<h2>Top divergent videos</h2>",
        _table(["video", "cells", "|delta|", "speed", "batch", "billable", "money", "causes"], top),
        "<h2>Archive completeness</h2>", _archive_section(summary),
        _restamped_section(summary),
        f"<h2>Divergent cells</h2><p>{escape(listed)}</p>",
        _table(["video", "minute", "speed", "batch", "delta", "cause", "billable"], cells),
        "</body></html>",
    ])
