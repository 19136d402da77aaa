"""/v1/reconciliations/{day}: the summary the reconcile layer stored, as it stored it; a
day never reconciled (or no reconciliation table yet) is 404 "no reconciliation for day"."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from storage.reconciliations import RECONCILIATION_TABLE, write_summary_text

pytestmark = pytest.mark.integration

SUMMARY = {
    "day": "2034-02-03", "status": "fail", "cells_compared": 1200, "cells_divergent": 2,
    "billing_cells_divergent": 1, "views_speed": 50_000, "views_batch": 50_007, "abs_delta_views": 7,
    "money_at_risk": {"EUR": "0.035000000"}, "causes": {"late": 5, "duplicate": 0, "missing_in_speed": 2,
                                       "missing_in_archive": 0, "other": 0},
    "divergences": [{"video_id": "v1", "minute": "2034-02-03T10:00:00Z", "speed": 10, "batch": 15,
                     "delta": 5, "cause": "late", "billable": True}],
    "report_uri": "s3://viewcount/reports/2034-02-03/report.html",
}


def test_a_day_never_reconciled_is_404(api):
    response = api.get("/v1/reconciliations/2034-02-02")
    assert (response.status_code, response.json()) == (404, {"error": "no reconciliation for day 2034-02-02"})


def test_a_stored_summary_is_answered_as_stored(api, cassandra_session, stack):
    tables = cassandra_session.cluster.metadata.keyspaces[stack.keyspace].tables
    if RECONCILIATION_TABLE not in tables:
        pytest.skip(f"no {RECONCILIATION_TABLE} table in this schema yet (the reconcile layer adds it)")
    write_summary_text(cassandra_session, dt.date(2034, 2, 3), json.dumps(SUMMARY))
    response = api.get("/v1/reconciliations/2034-02-03")
    assert (response.status_code, response.json()) == (200, SUMMARY)
