"""What a reconciliation shows of restatements: the text `viewcount reconcile` prints, and
the report's "Restates version N" section priced at the catalog's rates (no Cassandra:
rows given inline; tests/integration/test_reconcile_restatements.py reads them back)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from storage.catalog import CatalogEntry
from storage.restatements import Request, Restatement, VideoDelta

from reconcile.compare import Totals
from reconcile.report import render
from reconcile.restated import DayRestatements, RestatedVersion, priced
from reconcile.summary import Figures, build_summary, human_text
from reconcile.tolerances import Tolerances

DAY = dt.date(2026, 11, 20)
AT = dt.datetime(2026, 11, 22, 2, 15, tzinfo=dt.timezone.utc)


def _summary() -> dict:
    totals = Totals(10, 0, 300, 300, 0, [0] * 24, [0] * 24)
    return build_summary(day=DAY.isoformat(), version=5, totals=totals, figures=Figures(), tolerances=Tolerances(),
                         archive=[], report_uri="s3://b/r.html", extra={})


def _record(videos: int = 12) -> Restatement:
    # video v00 changes by 1, v01 by -2, ... v11 by -12: the largest |delta| are the last ones
    deltas = tuple(VideoDelta(f"v{i:02d}", 100, 100 + (i + 1) * (-1) ** i, None if i % 2 else "0.001", "EUR")
                   for i in range(videos))
    return Restatement(DAY, AT, 3, 5, sum(d.delta for d in deltas), videos, {"EUR": "0.012000", "USD": "-1.5"},
                       "late records reached the window after version 3 read it", "viewcount promote --date 2026-11-20",
                       deltas)


def test_the_text_lists_each_restatement_with_its_largest_videos_and_the_open_request():
    request = Request(DAY, "failed", AT - dt.timedelta(hours=3), AT, 3, "records arrived after the cutoff",
                      "gate failed: 2 billable cells")
    printed = _summary() | DayRestatements((_record(),), request).printed_fields()

    lines = human_text(printed).splitlines()

    assert "  restatements: 1" in lines
    assert any(line.startswith("    request failed since 2026-11-21T23:15:00+00:00 (serving version 3): records "
                               "arrived after the cutoff; gate failed: 2 billable cells") for line in lines)
    assert ("    2026-11-22T02:15:00+00:00: version 3 -> 5, views -6 over 12 videos, money 0.012 EUR, -1.5 USD; "
            "late records reached the window after version 3 read it") in lines
    videos = [line.split()[0] for line in lines if line.startswith("      v")]
    assert videos == ["v11", "v10", "v09", "v08", "v07", "v06", "v05", "v04", "v03", "v02"]  # by |delta|, 10 shown
    assert "      v10 100 -> 111 (+11, 0.001 EUR)" in lines and "      v11 100 -> 88 (-12)" in lines
    assert "      ... and 2 more videos" in lines


def test_a_day_without_restatements_prints_no_section():
    printed = _summary() | DayRestatements().printed_fields()

    assert printed["restatements"] == [] and printed["restatement_request"] is None
    assert "restatement" not in human_text(printed)
    assert human_text(printed) == human_text(_summary())


def test_the_money_of_a_restatement_is_exact_per_currency_and_only_for_billable_videos():
    deltas = [VideoDelta("eur", 1_000, 1_003), VideoDelta("eur2", 10, 3), VideoDelta("usd", 0, 1),
              VideoDelta("free", 5, 500), VideoDelta("unknown", 1, 2), VideoDelta("old", 0, 7)]
    catalog = {"eur": CatalogEntry("eur", True, Decimal("2.500001"), currency="EUR"),
               "eur2": CatalogEntry("eur2", True, Decimal("0.1"), currency="EUR"),
               "usd": CatalogEntry("usd", True, Decimal("0.000001"), currency="USD"),
               "free": CatalogEntry("free", False, Decimal("9"), currency="EUR"),
               "old": CatalogEntry("old", True, Decimal("1"))}

    videos, money = priced(deltas, catalog)

    # 3 x 2.500001 / 1000 - 7 x 0.1 / 1000, 1 x 0.000001 / 1000: every digit, never summed across currencies
    assert money == {"EUR": Decimal("0.006800003"), "USD": Decimal("0.000000001"), "XXX": Decimal("0.007")}
    assert [video.video_id for video in videos] == ["free", "eur2", "old", "eur", "unknown", "usd"]  # ties by id
    by_id = {video.video_id: video for video in videos}
    assert (by_id["eur2"].money_delta, by_id["eur2"].currency) == ("-0.0007", "EUR")
    assert by_id["free"].money_delta is None and by_id["unknown"].money_delta is None


def test_the_report_shows_what_the_version_restates_and_the_earlier_restatements():
    deltas = [VideoDelta(f"v{i:02d}", 10, 10 + i + 1) for i in range(60)]  # v59 changes most
    catalog = {f"v{i:02d}": CatalogEntry(f"v{i:02d}", True, Decimal("1.5"), currency="EUR") for i in range(60)}
    videos, money = priced(deltas, catalog)
    restated = RestatedVersion(5, 3, tuple(videos), money, videos_not_in_catalog=0)

    html = render(_summary(), Figures(), [0] * 24, [0] * 24, restated=restated, records=(_record(),))

    assert "<h2>Restates version 3</h2>" in html
    # 1 + 2 + ... + 60 = 1,830 views more; x 1.5 / 1000 = 2.745 EUR
    assert "<b>+1,830 views</b>, money 2.745 EUR" in html
    section = html.split("<h2>Restates version 3</h2>")[1].split("<h2>")[0]
    listed = re.findall(r"<tr><td>(v\d\d)</td>", section)
    assert listed == [f"v{i:02d}" for i in range(59, 9, -1)]  # the 50 largest, largest first
    assert "<tr><td>v59</td><td>10</td><td>70</td><td>+60</td><td>0.09 EUR</td></tr>" in section
    earlier = html.split("<h2>Restatements of the day</h2>")[1]
    assert "<td>2026-11-22T02:15:00Z</td><td>3 -&gt; 5</td><td>-6</td><td>12</td><td>0.012 EUR, -1.5 USD</td>" in earlier


def test_the_report_of_a_version_computed_against_no_promoted_version_has_no_restatement_section():
    html = render(_summary(), Figures(), [0] * 24, [0] * 24)

    assert "Restates version" not in html and "Restatements of the day" not in html
