"""API abuse (issue 6): schemathesis against the served OpenAPI schema finds no 5xx and no
answer the schema does not describe; every CQL read serving runs is a prepared statement;
oversized ranges, limits and ids are refused with a 4xx JSON error.

``viewcount serve`` runs for real on a free port, on a keyspace of this module's own, seeded
with speed, batch, top-videos and reconciliation rows for the schema's documented examples
(video ``video-42``, day 2026-11-25), so generated requests also walk the paths with data.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from serving.limits import Limits
from serving.main import create_app
from serving.store import ViewStore
from storage.minute_counts import SPEED_TABLE
from tests.support.serve import serve_running
from tests.support.serving import (
    batch_of, generated_counts, promote, running, write_batch, write_speed, write_top,
)

pytestmark = pytest.mark.integration

SCHEMATHESIS = str(Path(sys.executable).parent / "st")
EXAMPLE_VIDEO = "video-42"  # the examples the OpenAPI schema documents
FINAL_DAY, PROVISIONAL_DAY = dt.date(2026, 11, 25), dt.date(2026, 11, 26)
MAX_RANGE_DAYS = 31


@pytest.fixture(scope="module")
def settings(stack):
    """A keyspace of this module's own: it promotes the schema's example day freely."""
    from storage.cassandra import apply_migrations, drop_keyspace

    own = stack.replaced(keyspace=f"abuse_{uuid.uuid4().hex[:10]}")
    apply_migrations(own)
    yield own
    drop_keyspace(own)


@pytest.fixture(scope="module")
def seeded(settings):
    from storage.cassandra import connect
    from storage.reconciliations import write_summary

    session = connect(settings)
    speed = generated_counts(6, FINAL_DAY) | generated_counts(7, PROVISIONAL_DAY)
    write_speed(session, EXAMPLE_VIDEO, speed)
    write_batch(session, EXAMPLE_VIDEO, 1, {m: v for m, v in batch_of(speed, 8).items() if m.date() == FINAL_DAY})
    write_top(session, FINAL_DAY, 1, [(EXAMPLE_VIDEO, 90_000), ("video-7", 12), ("video-8", 12)])
    promote(session, FINAL_DAY, 1)
    write_summary(session, FINAL_DAY, reconciliation_summary(FINAL_DAY))
    session.cluster.shutdown()
    return settings


def reconciliation_summary(day: dt.date) -> dict:
    """The shape ``reconcile.summary.build_summary`` writes, extra fields included."""
    return {
        "day": day.isoformat(), "status": "pass", "cells_compared": 300, "cells_divergent": 1,
        "billing_cells_divergent": 0, "views_speed": 1000, "views_batch": 1003, "abs_delta_views": 3,
        "money_at_risk": {},
        "causes": {"late": 1, "duplicate": 0, "missing_in_speed": 0, "missing_in_archive": 0, "other": 0},
        "divergences": [{"video_id": EXAMPLE_VIDEO, "minute": f"{day.isoformat()}T00:05:00Z", "speed": 4,
                         "batch": 7, "delta": 3, "cause": "late", "billable": False,
                         "evidence": {"late_events": 3}}],
        "report_uri": f"s3://viewcount-test/reports/{day.isoformat()}/index.html",
        "batch_version": 1, "archive_complete": True,
    }


@pytest.fixture(scope="module")
def served(seeded, tmp_path_factory):
    """``viewcount serve`` on a free port, on the seeded keyspace; yields its base URL."""
    env = {**os.environ, "VIEWCOUNT_KEYSPACE": seeded.keyspace,
           "VIEWCOUNT_MAX_RANGE_DAYS": str(MAX_RANGE_DAYS)}
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve_running(log, env) as (url, _, health):
        assert health.status_code == 200
        yield url
    assert "Traceback" not in log.read_text(), log.read_text()


def test_the_seeded_examples_answer_data(served):
    """The fuzzing below reaches real rows: the schema's examples name them."""
    views = httpx.get(f"{served}/v1/videos/{EXAMPLE_VIDEO}/views",
                      params={"start": "2026-11-25T00:00:00Z", "end": "2026-11-27T00:00:00Z"}).json()
    assert views["batch_views"] > 0 and views["speed_views"] > 0 and views["provisional_days"] == ["2026-11-26"]
    assert httpx.get(f"{served}/v1/top", params={"day": "2026-11-25"}).json()["videos"][0]["video_id"] == EXAMPLE_VIDEO
    assert httpx.get(f"{served}/v1/reconciliations/2026-11-25").json()["status"] == "pass"


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(served, tmp_path):
    """Every check but positive_data_acceptance: "end after start, at most 31 days" and
    "a calendar date" are constraints OpenAPI cannot state, so schema-valid input can be a
    documented 400. A 5xx (503 included: Cassandra is up here) fails the test."""
    result = subprocess.run(
        [SCHEMATHESIS, "run", f"{served}/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--max-examples", "150", "--workers", "2",
         "--request-timeout", "10", "--max-response-time", "5"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    assert "Tested: 5" in result.stdout


def assert_json_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and fragment in body["error"]
    assert len(response.content) < 500  # a huge input is not echoed back


HUGE = 60_000  # characters: under the HTTP parser's own limit on a request line


@pytest.mark.parametrize("path, params, fragment", [
    (f"/v1/videos/{EXAMPLE_VIDEO}/views",
     {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:01Z"}, f"maximum of {MAX_RANGE_DAYS} days"),
    (f"/v1/videos/{EXAMPLE_VIDEO}/views/minutely",
     {"start": "0001-01-01T00:00:00Z", "end": "9998-12-31T00:00:00Z"}, f"maximum of {MAX_RANGE_DAYS} days"),
    (f"/v1/videos/{EXAMPLE_VIDEO}/views",
     {"start": "9" * HUGE, "end": "2026-11-26T00:00:00Z"}, "start must be an RFC 3339 time"),
    (f"/v1/videos/{EXAMPLE_VIDEO}/views",
     {"start": "2026-11-25T00:00:00." + "9" * HUGE + "Z", "end": "2026-11-26T00:00:00Z"}, "start must be"),
    ("/v1/videos/" + "v" * HUGE + "/views",
     {"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"}, "video_id must be 1 to 64"),
    ("/v1/videos/" + "v" * 65 + "/views/minutely",
     {"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"}, "video_id must be 1 to 64"),
    ("/v1/top", {"day": "2026-11-25", "limit": "1001"}, "limit must be between 1 and 1000"),
    ("/v1/top", {"day": "2026-11-25", "limit": "9" * 5000}, "limit: Unable to parse"),
    ("/v1/top", {"day": "2" * HUGE}, "day must be YYYY-MM-DD"),
    ("/v1/reconciliations/" + "2" * HUGE, {}, "day must be YYYY-MM-DD"),
])
def test_oversized_ranges_limits_and_ids_are_a_short_json_400(served, path, params, fragment):
    assert_json_error(httpx.get(served + path, params=params, timeout=30), 400, fragment)


def test_repeated_parameters_answer_once_and_never_fan_out(served):
    """A query string repeating ``video_id``-like parameters is not an id list: one range, one answer."""
    query = "&".join(["start=2026-11-25T00:00:00Z", "end=2026-11-26T00:00:00Z"] * 300)
    response = httpx.get(f"{served}/v1/videos/{EXAMPLE_VIDEO}/views?{query}", timeout=30)
    assert response.status_code == 200 and response.json()["end"] == "2026-11-26T00:00:00Z"


class StatementRecorder:
    """The real session, its ``execute``/``execute_async`` calls recorded (Cassandra still answers)."""

    def __init__(self, session) -> None:
        self.statements: list = []
        for name in ("execute", "execute_async"):
            real = getattr(session, name)
            setattr(session, name, self._recording(real))

    def _recording(self, real):
        def call(statement, *args, **kwargs):
            self.statements.append(statement)
            return real(statement, *args, **kwargs)
        return call


def prepared_cql(statement) -> str | None:
    """The CQL of a prepared statement (as passed, or bound); None for plain CQL text."""
    from cassandra.query import BoundStatement, PreparedStatement

    if isinstance(statement, BoundStatement):
        return statement.prepared_statement.query_string
    return statement.query_string if isinstance(statement, PreparedStatement) else None


def test_every_cql_read_of_every_endpoint_is_a_prepared_statement(seeded):
    store = ViewStore(seeded, Limits(max_range_days=MAX_RANGE_DAYS, cache_entries=0))
    recorder = StatementRecorder(store.connect())
    day = {"start": "2026-11-25T00:00:00Z", "end": "2026-11-27T00:00:00Z"}
    with running(create_app(store)) as url, httpx.Client(base_url=url, timeout=30) as client:
        answers = [client.get(f"/v1/videos/{EXAMPLE_VIDEO}/views", params=day),
                   client.get(f"/v1/videos/{EXAMPLE_VIDEO}/views/minutely", params=day),
                   client.get("/v1/top", params={"day": "2026-11-25", "limit": 2}),
                   client.get("/v1/top", params={"day": "2026-11-26"}),  # 404: not final
                   client.get("/v1/reconciliations/2026-11-25"),
                   client.get("/v1/reconciliations/2026-11-26"),  # 404: none
                   client.get("/healthz"), client.get("/metrics")]
    store.close()
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 200, 404, 200, 200]
    not_prepared = [s for s in recorder.statements if prepared_cql(s) is None]
    assert not not_prepared, not_prepared
    tables = {prepared_cql(s).split(" FROM ")[1].split()[0] for s in recorder.statements}
    # /metrics reads the open restatement requests and the recent promotion overrides too
    # (the restatement records only of days with a request: none here).
    assert tables == {"batch_promotions", SPEED_TABLE, "batch_minute_views", "batch_top_videos",
                      "reconciliations", "system.local", "restatement_requests", "unreconciled_promotions"}, tables


def test_a_query_string_cannot_reach_cql_text(seeded):
    """Ids and times travel as bound values: a CQL fragment in an id is just a bad id."""
    store = ViewStore(seeded, Limits())
    try:
        with running(create_app(store)) as url:
            response = httpx.get(f"{url}/v1/videos/x' OR '1'='1/views",
                                 params={"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"})
    finally:
        store.close()
    assert_json_error(response, 400, "video_id must be")
