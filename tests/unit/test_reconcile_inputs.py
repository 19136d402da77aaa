"""Plain-Python parts of reconcile: the version and window, tolerances, the catalog CSV,
the speed log's bucket skipping and the token ranges."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from decimal import Decimal

import pytest

from reconcile.tolerances import Tolerances, tolerances_from
from reconcile.catalog_command import parse_catalog
from counting.window import BatchWindow
from counting.window import parse_day
from reconcile.inputs import chosen_version, window_of
from reconcile.speed_log import _bucket_may_overlap, _ranges
from storage.token_scan import MAX_TOKEN, MIN_TOKEN, token_ranges
from settings.environment import ReconcileKnobs
from settings.errors import UserError
from storage.batch_results import BatchVersion
from storage.speed_queries import RegisteredQuery

D = dt.date(2026, 11, 20)
CUTOFF = dt.datetime(2026, 11, 21, 1, 0, tzinfo=dt.timezone.utc)


def version(number: int, status: str = "complete") -> BatchVersion:
    return BatchVersion(D, number, status, "fingerprint", cutoff=CUTOFF,
                        parquet_uri=f"s3a://b/batch/day={D}/version={number}")


def test_the_newest_complete_version_is_the_default():
    assert chosen_version(D, [version(3, "running"), version(2), version(1)], None).version == 2
    assert chosen_version(D, [version(3, "running"), version(2), version(1)], 1).version == 1


@pytest.mark.parametrize("versions, requested, message", [
    ([], None, "has no batch version: run `viewcount batch --date 2026-11-20` first"),
    ([version(1, "running")], None, "has no complete batch version (versions: 1 (running))"),
    ([version(1)], 4, "has no batch version 4 (versions: 1 (complete))"),
    ([version(1), version(2, "running")], 2, "batch version 2 of 2026-11-20 is not complete"),
])
def test_a_missing_or_incomplete_version_is_a_user_error(versions, requested, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        chosen_version(D, versions, requested)


def test_the_window_is_the_batch_versions_own():
    window = window_of(version(1))

    assert window.start == dt.datetime(2026, 11, 19, 23, 55, tzinfo=dt.timezone.utc)
    assert window.hours()[0] == (dt.date(2026, 11, 19), 23) and window.hours()[-1] == (dt.date(2026, 11, 21), 0)
    assert len(BatchWindow.with_cutoff(D, CUTOFF + dt.timedelta(minutes=1)).hours()) == 27


@pytest.mark.parametrize("text", ["2026-13-01", "20261120", "1969-12-31", "2026-02-30"])
def test_bad_dates_are_refused(text):
    with pytest.raises(ValueError):
        parse_day(text)


def test_tolerances_come_from_flags_then_environment_then_defaults(monkeypatch):
    flags = {"billable_abs": None, "billable_rel": 0.5, "nonbillable_abs": None, "nonbillable_rel": None}
    for name in ("BILLABLE_ABS", "NONBILLABLE_REL"):
        monkeypatch.delenv(f"VIEWCOUNT_RECONCILE_{name}", raising=False)
    monkeypatch.setenv("VIEWCOUNT_RECONCILE_BILLABLE_REL", "0.9")
    monkeypatch.setenv("VIEWCOUNT_RECONCILE_NONBILLABLE_ABS", "3")

    assert tolerances_from(flags, ReconcileKnobs.from_env()) == Tolerances(0.0, 0.5, 3.0, 0.01)
    monkeypatch.setenv("VIEWCOUNT_RECONCILE_BILLABLE_ABS", "-1")
    with pytest.raises(UserError, match="VIEWCOUNT_RECONCILE_BILLABLE_ABS must be at least 0, got '-1'"):
        tolerances_from(flags, ReconcileKnobs.from_env())


def test_a_catalog_csv_is_parsed_and_checked_whole():
    entries = parse_catalog("video_id,billable,rate_per_1000,currency,title\nv-1,true,2.50,EUR,Trailer\n"
                            "v_2,no,0,USD,\n")

    assert [(e.video_id, e.billable, e.rate_per_1000, e.currency, e.title) for e in entries] == [
        ("v-1", True, Decimal("2.50"), "EUR", "Trailer"), ("v_2", False, Decimal("0"), "USD", None)]


def test_rows_without_a_currency_take_the_one_given_and_none_is_ever_guessed():
    text = "video_id,billable,rate_per_1000,currency\nv1,true,1,\nv2,true,1,EUR\n"

    assert [e.currency for e in parse_catalog(text, "USD")] == ["USD", "EUR"]
    assert [e.currency for e in parse_catalog("video_id,billable,rate_per_1000\nv1,true,1\n", "CHF")] == ["CHF"]
    with pytest.raises(UserError, match="line 2: no currency: add a currency column .* or pass --currency"):
        parse_catalog(text)


@pytest.mark.parametrize("text, message", [
    ("video_id,rate_per_1000\nv1,1\n", "header lacks billable"),
    ("video_id,billable,rate_per_1000\nv1,maybe,1\n", "line 2: billable 'maybe'"),
    ("video_id,billable,rate_per_1000\nv1,true,-1\n", "line 2: rate_per_1000 '-1'"),
    ("video_id,billable,rate_per_1000\nv1,true,0.0000001\n", "at most 6 decimal places"),
    ("video_id,billable,rate_per_1000\nv1,true,1\nv 2,true,1\n", "line 3: video_id 'v 2'"),
    ("video_id,billable,rate_per_1000\nv1,true,1\nv1,false,1\n", "line 3: video v1 is already on line 2"),
    ("video_id,billable,rate_per_1000,currency\nv1,true,1,euro\n", "line 2: currency 'euro' is not an ISO 4217"),
])
def test_a_bad_catalog_row_names_its_line(text, message):
    with pytest.raises(UserError, match=message):
        parse_catalog(text, "USD")


Row = namedtuple("Row", "batch_id topic start_offsets end_offsets late_watermark_ms")
QUERY = RegisteredQuery("q", "/cp/counts", None)


def test_log_ranges_outside_the_window_are_left_out():
    rows = [Row(0, "views", {0: 0, 1: 0}, {0: 10, 1: 0}, 0), Row(1, "views", {0: 10, 1: 0}, {0: 20, 1: 5}, 99)]

    ranges = _ranges(QUERY, rows, "views", {0: (12, 30), 1: (0, 5)})

    assert [(r.batch_id, r.partition, r.start, r.end, r.late_watermark_ms) for r in ranges] == [
        (1, 0, 10, 20, 99), (1, 1, 0, 5, 99)]
    assert {(r.query_id, r.written_from_ms) for r in ranges} == {("q", 0)}


def test_log_ranges_of_a_rebuild_carry_its_write_floor():
    floor = dt.datetime(2026, 12, 3, 6, 11, tzinfo=dt.timezone.utc)
    rows = [Row(0, "views", {0: 0}, {0: 10}, 0)]

    [found] = _ranges(RegisteredQuery("r", "/cp/counts", floor), rows, "views", {0: (0, 10)})

    assert found.written_from_ms == int(floor.timestamp() * 1000)


def test_log_ranges_of_another_topic_are_not_taken_for_this_ones():
    """A checkpoint once run against another topic logged offsets with the same partition
    numbers: they say nothing about what the counter read of this topic."""
    rows = [Row(0, "staging.views", {0: 0}, {0: 50}, 0), Row(1, "views", {0: 0}, {0: 20}, 0)]

    ranges = _ranges(QUERY, rows, "views", {0: (0, 50)})

    assert [(r.batch_id, r.start, r.end) for r in ranges] == [(1, 0, 20)]


def test_a_log_bucket_is_read_only_when_it_can_touch_the_window():
    window = {0: (100, 200)}

    assert not _bucket_may_overlap({0: 0}, {0: 100}, window)  # wholly before
    assert not _bucket_may_overlap({0: 200}, {0: 300}, window)  # wholly after
    assert _bucket_may_overlap({0: 50}, {0: 150}, window)
    assert _bucket_may_overlap({0: 50}, None, window)  # the last bucket may still grow
    assert _bucket_may_overlap({}, {0: 10}, window)  # not provable: read it


def test_token_ranges_cover_the_ring_without_overlap():
    ranges = token_ranges(7)

    assert ranges[0][0] == MIN_TOKEN and ranges[-1][1] == MAX_TOKEN
    assert all(previous[1] == following[0] for previous, following in zip(ranges, ranges[1:]))
