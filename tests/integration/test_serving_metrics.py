"""/metrics: Prometheus text with request counts by route template and status, latency
histograms, and the cache of promoted partitions."""

from __future__ import annotations

import pytest

from tests.support.serving import samples, value

pytestmark = pytest.mark.integration

DAY = "start=2026-11-25T00:00:00Z&end=2026-11-26T00:00:00Z"
ROUTE = "/v1/videos/{video_id}/views"


def test_metrics_count_requests_by_route_and_status_and_time_them(api):
    for video_id in ("a", "b", "c"):
        assert api.get(f"/v1/videos/{video_id}/views?{DAY}").status_code == 200
    assert api.get(f"/v1/videos/bad.id/views?{DAY}").status_code == 400
    assert api.get("/no/such/path/123").status_code == 404

    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    metrics = samples(response.text)
    requests = "viewcount_http_requests_total"
    assert value(metrics, requests, method="GET", route=ROUTE, status="200") == 3
    assert value(metrics, requests, method="GET", route=ROUTE, status="400") == 1
    assert value(metrics, requests, method="GET", route="<unmatched>", status="404") == 1
    latency = "viewcount_http_request_duration_seconds"
    assert value(metrics, latency + "_count", method="GET", route=ROUTE) == 4
    assert value(metrics, latency + "_bucket", method="GET", route=ROUTE, le="+Inf") == 4
    assert value(metrics, latency + "_bucket", method="GET", route=ROUTE, le="5.0") == 4
    assert value(metrics, latency + "_sum", method="GET", route=ROUTE) > 0
    lookups = "viewcount_serving_cache_lookups_total"
    # three videos' first reads: from the partitions the cell feed keeps, or read each time
    # while the worker does not follow the feed yet
    assert sum(value(metrics, lookups, cache=cache, result="miss") for cache in ("live", "provisional")) >= 3
    states = {state: value(metrics, "viewcount_serving_live_state", state=state)
              for state in ("following", "starting", "behind", "unreachable", "off")}
    assert sorted(states.values()) == [0, 0, 0, 0, 1]
    for name in ("lag_records", "lag_seconds", "evictions_total", "cells_total", "resyncs_total"):
        assert value(metrics, f"viewcount_serving_live_{name}") >= 0
    assert value(metrics, lookups, cache="final", result="hit") >= 0
    assert value(metrics, "viewcount_serving_cache_entries", cache="final") >= 0
    assert value(metrics, "viewcount_serving_cache_entries", cache="provisional") >= 0
    assert not any("/v1/videos/a/" in str(labels) for _, labels in metrics)  # no raw paths


def test_metrics_show_the_newest_promoted_and_reconciled_day_for_the_nightly_alerts(stack, cassandra_session):
    """The days are later than any other test's, so they are the newest; a fresh store,
    since each reads them at most once a minute."""
    import datetime as dt

    import httpx

    from serving.limits import Limits
    from serving.main import create_app
    from serving.store import ViewStore
    from storage.reconciliations import delete_day, write_status
    from tests.support.serving import promote, running, unpromote

    promoted, failed = dt.date(2099, 12, 30), dt.date(2099, 12, 31)
    promote(cassandra_session, promoted, 3)
    write_status(cassandra_session, failed, "fail")
    view_store = ViewStore(stack, Limits())
    try:
        with running(create_app(view_store)) as url, httpx.Client(base_url=url, timeout=30) as client:
            metrics = samples(client.get("/metrics").text)
            midnight = dt.datetime(2099, 12, 30, tzinfo=dt.timezone.utc).timestamp()
            assert value(metrics, "viewcount_nightly_promoted_day_timestamp_seconds") == midnight
            assert value(metrics, "viewcount_nightly_reconciled_day_timestamp_seconds") == midnight + 86_400
            assert value(metrics, "viewcount_nightly_reconciliation_passed") == 0
            write_status(cassandra_session, failed, "pass")
            view_store._nightly_read_at -= 60  # the minute between two reads has passed
            assert value(samples(client.get("/metrics").text), "viewcount_nightly_reconciliation_passed") == 1
    finally:
        view_store.close()
        unpromote(cassandra_session, promoted)
        delete_day(cassandra_session, failed)
