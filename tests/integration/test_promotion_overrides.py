"""A promotion whose passing reconciliation gated billable cells with tolerances looser
than exact is an override, recorded like an unreconciled promotion (``unreconciled_promotions``,
kind 'loosened', with the tolerances and the command) before the switch, said so by
`viewcount promote`, and counted on /metrics. Versions and reconciliations are written
into the session keyspace as the batch and `viewcount reconcile` write them, on days of
this test's own; the promotions run through the command line against the real Cassandra."""

from __future__ import annotations

import datetime as dt
import os

import httpx
import pytest

from storage.batch_results import BatchStats, VersionClaim, claim_version, complete_version, read_promotion
from storage.reconciliations import write_summary

from reconcile.compare import Totals
from reconcile.summary import Figures, build_summary
from reconcile.tolerances import Tolerances
from tests.support.speed import viewcount

pytestmark = pytest.mark.integration

LOOSENED_DAY, EXACT_DAY = dt.date(2098, 2, 11), dt.date(2098, 2, 12)
UNRECONCILED_DAY = dt.date(2098, 2, 13)
OVERRIDES = "viewcount_promotion_overrides"


def _version(session, day: dt.date, version: int) -> None:
    cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1), dt.timezone.utc)
    claim = VersionClaim(day, version, f"fp-{version}", cutoff, False)
    assert claim_version(session, claim)
    complete_version(session, claim, BatchStats(10, {}, 0, 0, 0, 1, 10, 1), f"s3a://nowhere/{day}/{version}")


def _reconciled(session, day: dt.date, version: int, tolerances: Tolerances) -> dict:
    """A passing reconciliation of the version, stored as `viewcount reconcile` stores it."""
    summary = build_summary(day=day.isoformat(), version=version, totals=Totals(4, 0, 40, 40, 0),
                            figures=Figures(), tolerances=tolerances, archive=[], report_uri="s3://b/r.html",
                            extra={})
    write_summary(session, day, summary)
    return summary


@pytest.fixture()
def days(cassandra_session):
    session = cassandra_session
    days = (LOOSENED_DAY, EXACT_DAY, UNRECONCILED_DAY)
    yield days
    from storage import batch_results, reconciliations

    for day in days:
        batch_results.delete_day(session, day)
        reconciliations.delete_day(session, day)


def test_a_version_passed_with_loosened_billable_tolerances_is_promoted_as_a_recorded_override(
        cassandra_session, days):
    from storage.batch_results import read_unreconciled_promotions

    session = cassandra_session
    _version(session, LOOSENED_DAY, 1)
    summary = _reconciled(session, LOOSENED_DAY, 1, Tolerances(billable_abs=5.0, billable_rel=0.02))

    promoted = viewcount(dict(os.environ), "promote", "--date", str(LOOSENED_DAY))

    assert promoted.stdout.strip() == (
        f"day {LOOSENED_DAY}: promoted version 1 (previous: none); reconciled with billable tolerances looser "
        "than exact (abs 5, rel 0.02), by override (recorded)")
    assert "billable tolerances looser than exact" in promoted.stderr  # the warning in the log
    assert [(version, status) for _, version, status in read_unreconciled_promotions(session, LOOSENED_DAY)] == [
        (1, "pass")]
    from storage.batch_results import read_promotion_overrides

    [override] = read_promotion_overrides(session, LOOSENED_DAY)
    assert (override.version, override.kind, override.status, override.command) == (
        1, "loosened", "pass", "viewcount promote")
    assert override.tolerances == summary["tolerances"] == {
        "billable_abs": 5.0, "billable_rel": 0.02, "nonbillable_abs": 10.0, "nonbillable_rel": 0.01}
    assert read_promotion(session, LOOSENED_DAY).version == 1
    # The stored summary's gate says what it gated with, and that it was loosened.
    assert summary["gate"]["billable_tolerances_loosened"] == {"billable_abs": 5.0, "billable_rel": 0.02}


def test_a_version_passed_with_exact_billable_tolerances_is_no_override(cassandra_session, days):
    from storage.batch_results import read_unreconciled_promotions

    session = cassandra_session
    _version(session, EXACT_DAY, 1)
    # Non-billable tolerances never gate money: loosening them is no override.
    summary = _reconciled(session, EXACT_DAY, 1, Tolerances(nonbillable_abs=50.0, nonbillable_rel=0.1))

    promoted = viewcount(dict(os.environ), "promote", "--date", str(EXACT_DAY))

    assert promoted.stdout.strip() == f"day {EXACT_DAY}: promoted version 1 (previous: none)"
    assert read_unreconciled_promotions(session, EXACT_DAY) == []
    from storage.batch_results import read_promotion_overrides

    assert read_promotion_overrides(session, EXACT_DAY) == []
    assert summary["gate"]["billable_tolerances_loosened"] == {}


def test_an_unreconciled_override_records_its_kind_and_command(cassandra_session, days):
    from storage.batch_results import read_promotion_overrides

    _version(cassandra_session, UNRECONCILED_DAY, 1)

    viewcount(dict(os.environ), "promote", "--date", str(UNRECONCILED_DAY), "--unreconciled")

    [override] = read_promotion_overrides(cassandra_session, UNRECONCILED_DAY)
    assert (override.version, override.kind, override.status, override.command) == (
        1, "unreconciled", None, "viewcount promote --unreconciled")


def test_metrics_count_the_overrides_of_recent_days_by_kind(stack, cassandra_session, days):
    from serving.limits import Limits
    from serving.main import create_app
    from serving.overrides import REFRESH_S
    from serving.store import ViewStore
    from storage.batch_results import promote
    from tests.support.serving import running, samples, value

    session = cassandra_session
    promote(session, LOOSENED_DAY, 1, None, override="loosened", reconciliation="pass",
            tolerances={"billable_abs": 5.0}, command="viewcount promote")
    promote(session, UNRECONCILED_DAY, 1, None, override="unreconciled", command="viewcount promote --unreconciled")
    app = create_app(ViewStore(stack, Limits()))
    app.state.overrides.today = lambda: UNRECONCILED_DAY + dt.timedelta(days=1)
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        metrics = samples(client.get("/metrics").text)
        assert value(metrics, OVERRIDES, kind="loosened") == 1
        assert value(metrics, OVERRIDES, kind="unreconciled") == 1
        assert value(metrics, "viewcount_promotion_override_read_ok") == 1

        promote(session, EXACT_DAY, 1, None, override="loosened", reconciliation="pass",
                tolerances={"billable_rel": 0.01}, command="viewcount promote")
        app.state.overrides._tried_at -= REFRESH_S  # the seconds between two reads have passed
        assert value(samples(client.get("/metrics").text), OVERRIDES, kind="loosened") == 2

        app.state.overrides.today = lambda: UNRECONCILED_DAY + dt.timedelta(days=30)  # all aged out of the window
        app.state.overrides._tried_at -= REFRESH_S
        metrics = samples(client.get("/metrics").text)
        assert value(metrics, OVERRIDES, kind="loosened") == 0 and value(metrics, OVERRIDES, kind="unreconciled") == 0
