"""What `viewcount reconcile` prints and reports of restatements, read from Cassandra: rows
written with storage.restatements (and a promotion history, deltas and catalog rows) into
the session keyspace, on a day of this test's own, read back as the command reads them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from storage.batch_results import delete_day, promote
from storage.catalog import CatalogEntry, upsert_entries
from storage.restatements import (
    FAILED, PENDING, RESTATED, Restatement, VideoDelta, delete_requests, delete_restatements, delete_version_deltas,
    write_request, write_restatement, write_version_deltas,
)

from reconcile.compare import Totals
from reconcile.report import render
from reconcile.restated import read_day, restated_version
from reconcile.summary import Figures, build_summary, human_text
from reconcile.tolerances import Tolerances

pytestmark = pytest.mark.integration

DAY = dt.date(2096, 5, 17)


@pytest.fixture()
def day_rows(cassandra_session):
    topic = f"test-{uuid.uuid4().hex[:12]}"
    yield topic
    session = cassandra_session
    delete_requests(session, topic)
    delete_restatements(session, DAY)
    delete_day(session, DAY, ("batch_promotions", "batch_promotion_history", "batch_versions"))
    delete_version_deltas(session, DAY, 6, 4)


def _summary(version: int) -> dict:
    return build_summary(day=DAY.isoformat(), version=version, totals=Totals(4, 0, 40, 40, 0, [0] * 24, [0] * 24),
                         figures=Figures(), tolerances=Tolerances(), archive=[], report_uri="s3://b/r.html", extra={})


def test_the_printed_summary_lists_the_days_restatements_and_its_open_request(cassandra_session, day_rows):
    session, topic = cassandra_session, day_rows
    first = dt.datetime(2096, 5, 18, 2, 0, tzinfo=dt.timezone.utc)
    older = Restatement(DAY, first, 1, 2, 5, 1, {"EUR": "0.005"}, "records after the cutoff", "viewcount promote",
                        (VideoDelta("a", 10, 15, "0.005", "EUR"),))
    newer = Restatement(DAY, first + dt.timedelta(days=1), 2, 1, -5, 1, {"EUR": "-0.005"}, "rollback",
                        "viewcount promote --version 1", (VideoDelta("a", 15, 10, "-0.005", "EUR"),))
    write_restatement(session, older)
    write_restatement(session, newer)
    write_request(session, topic, DAY, PENDING, "records reached the window after version 1 read it",
                  served_version=1)

    printed = _summary(2) | read_day(session, topic, DAY).printed_fields()

    parsed = json.loads(json.dumps(printed))  # what --json prints
    assert [r["restated_at"] for r in parsed["restatements"]] == [newer.restated_at.isoformat(),
                                                                   older.restated_at.isoformat()]
    assert parsed["restatements"][1] == older.as_dict()
    assert parsed["restatement_request"]["status"] == PENDING
    assert parsed["restatement_request"]["served_version"] == 1
    text = human_text(printed)
    assert "  restatements: 2" in text and "    request pending since " in text
    assert "version 1 -> 2, views +5 over 1 videos, money 0.005 EUR; records after the cutoff" in text
    assert "      a 15 -> 10 (-5, -0.005 EUR)" in text

    write_request(session, topic, DAY, FAILED, "gate failed", served_version=1)
    assert read_day(session, topic, DAY).open_request.status == FAILED  # failed is still open
    write_request(session, topic, DAY, RESTATED, "restated", served_version=2)
    assert read_day(session, topic, DAY).printed_fields()["restatement_request"] is None  # closed


def test_the_report_prices_what_the_version_restates_against_the_promoted_one(cassandra_session, day_rows):
    session = cassandra_session
    prefix = uuid.uuid4().hex[:8]
    eur, usd, free, unknown = (f"{prefix}-{name}" for name in ("eur", "usd", "free", "unknown"))
    upsert_entries(session, [CatalogEntry(eur, True, Decimal("2.000001"), currency="EUR"),
                             CatalogEntry(usd, True, Decimal("0.5"), currency="USD"),
                             CatalogEntry(free, False, Decimal("3"), currency="EUR")])
    promote(session, DAY, 3, None)
    promote(session, DAY, 4, 3)  # version 6 was computed while 4 was served
    write_version_deltas(session, DAY, 6, 4, [(eur, 1_000, 1_007), (usd, 50, 48), (free, 0, 900), (unknown, 1, 2)])

    restated = restated_version(session, DAY, 6)

    assert (restated.version, restated.against, restated.views_delta) == (6, 4, 906)
    assert restated.money_delta == {"EUR": Decimal("0.014000007"), "USD": Decimal("-0.001")}
    assert restated.videos_not_in_catalog == 1
    assert restated_version(session, DAY, 3) is None  # computed against no promoted version
    html = render(_summary(6), Figures(), [0] * 24, [0] * 24, restated=restated)
    assert "<h2>Restates version 4</h2>" in html
    assert "<b>+906 views</b>, money 0.014000007 EUR, -0.001 USD" in html
    assert f"<tr><td>{free}</td><td>0</td><td>900</td><td>+900</td><td>-</td></tr>" in html
    assert f"<tr><td>{eur}</td><td>1,000</td><td>1,007</td><td>+7</td><td>0.014000007 EUR</td></tr>" in html
