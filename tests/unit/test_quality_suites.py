"""The data-quality suites pass on good data and block on each kind of bad data
(Great Expectations 1.x on a local SparkSession and on pandas; no S3: nothing published)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from reconcile.quality import frames, suites
from reconcile.quality.validate import QualityRun

DAY = dt.date(2026, 11, 20)


@pytest.fixture()
def run():
    return QualityRun(DAY)


def _archive(spark, offsets: list[tuple[int, int]]):
    rows = [("views", partition, offset, dt.datetime(2026, 11, 20, 10), b"k", b"{}")
            for partition, offset in offsets]
    return spark.createDataFrame(
        rows, "topic string, partition int, offset bigint, kafka_timestamp timestamp, key binary, value binary")


def test_archive_suites_pass_on_contiguous_offsets_and_block_on_a_hole_a_repeat_or_a_missing_offset(spark, run):
    good = _archive(spark, [(0, 5), (0, 6), (0, 7), (1, 0), (1, 1)])
    assert run.validate(good, suites.archive_records()).success
    assert run.validate(frames.offsets_per_partition(good), suites.archive_offsets()).success

    hole = _archive(spark, [(0, 5), (0, 7), (1, 0)])
    result = run.validate(frames.offsets_per_partition(hole), suites.archive_offsets())
    assert result.blocking and any("offset_span" in failure for failure in result.critical_failed)

    # Offsets the archiver recorded as holding no record (a transaction marker) are no hole.
    marker = frames.offsets_per_partition(hole, lambda partition, first, last: 1 if (partition, first, last) == (0, 5, 7)
                                          else 0)
    assert run.validate(marker, suites.archive_offsets()).success
    # Nor is an offset archived as a record of another hour (stamped out of offset order);
    # it is asked for only where the window's own offsets leave a hole.
    asked = []
    elsewhere = frames.offsets_per_partition(hole, elsewhere_in=lambda *span: asked.append(span) or 1)
    assert run.validate(elsewhere, suites.archive_offsets()).success and asked == [(0, 5, 7)]

    repeat = _archive(spark, [(0, 5), (0, 5), (0, 6)])
    result = run.validate(frames.offsets_per_partition(repeat), suites.archive_offsets())
    assert result.blocking and any("distinct_offsets" in failure for failure in result.critical_failed)

    missing = _archive(spark, [(0, 5), (0, None), (0, 6)])
    result = run.validate(frames.offsets_per_partition(missing), suites.archive_offsets())
    assert result.blocking and any("missing_coordinates" in failure for failure in result.critical_failed)


def test_the_archive_schema_blocks_a_column_of_the_wrong_type(spark, run):
    wrong = _archive(spark, [(0, 5)]).withColumn("offset", F.col("offset").cast("string"))
    result = run.validate(wrong, suites.archive_records())
    assert result.blocking and any("offset" in failure for failure in result.critical_failed)


def _counts(spark, rows):
    return spark.createDataFrame(rows, "video_id string, minute timestamp, views bigint")


def test_batch_counts_block_on_duplicate_keys_zero_views_missing_fields_and_bad_ids(spark, run):
    minute = dt.datetime(2026, 11, 20, 10, 1)
    good = frames.counts_profile(_counts(spark, [("v-1", minute, 3), ("v-2", minute, 1)]))
    assert run.validate(good, suites.batch_counts()).success
    assert int(good["total_views"].iloc[0]) == 4

    bad = frames.counts_profile(_counts(spark, [("v-1", minute, 3), ("v-1", minute, 0)]))
    result = run.validate(bad, suites.batch_counts())
    assert result.blocking and len(result.critical_failed) == 2  # the repeated key, the zero count

    odd = frames.counts_profile(_counts(spark, [("v 1", minute, 3), ("v-2", None, 1)]))
    failed = run.validate(odd, suites.batch_counts()).critical_failed
    # A cell without a minute has no key either: it also leaves the distinct keys short.
    assert [f.split("(")[1].split(")")[0] for f in failed] == ["missing_fields", "malformed_video_ids",
                                                                "cells vs distinct_cells"]

    empty = frames.counts_profile(_counts(spark, []))
    assert run.validate(empty, suites.batch_counts()).success  # a day without views is valid


def _summary(**changes) -> dict:
    summary = {
        "day": str(DAY), "status": "fail", "cells_compared": 10, "cells_divergent": 2,
        "views_speed": 9, "views_batch": 12, "abs_delta_views": 3,
        "money_at_risk": {"EUR": "0.500000000"},
        "causes": {"late": 1, "duplicate": 0, "missing_in_speed": 1, "missing_in_archive": 0, "other": 0},
        "divergences": [
            {"video_id": "v-1", "minute": "2026-11-20T10:01:00Z", "speed": 1, "batch": 2, "delta": -1,
             "cause": "late", "billable": True},
            {"video_id": "v-2", "minute": "2026-11-20T10:02:00Z", "speed": 0, "batch": 2, "delta": -2,
             "cause": "missing_in_speed", "billable": False},
        ],
    }
    return {**summary, **changes}


def test_reconciliation_suites_pass_on_a_consistent_summary_and_block_on_inconsistent_figures(run):
    divergences, figures = frames.reconciliation_frames(_summary())
    assert run.validate(divergences, suites.reconciliation()).success
    assert run.validate(figures, suites.reconciliation_summary()).success

    _, figures = frames.reconciliation_frames(_summary(cells_divergent=3))
    assert run.validate(figures, suites.reconciliation_summary()).blocking

    for money in (0.5, {"EUR": "-1"}, {"euro": "1"}, {"EUR": "NaN"}, {"EUR": 0.5}):  # exact amounts per currency only
        _, figures = frames.reconciliation_frames(_summary(money_at_risk=money))
        assert run.validate(figures, suites.reconciliation_summary()).blocking, money

    wrong_delta = _summary()
    wrong_delta["divergences"][0] = {**wrong_delta["divergences"][0], "delta": 1}
    divergences, _ = frames.reconciliation_frames(wrong_delta)
    assert run.validate(divergences, suites.reconciliation()).blocking


def test_distinct_valid_events_counts_each_valid_view_of_the_day_once(spark):
    from tests.support.archive_day import D, archive_rows

    # Of RECORDS: e0 at 00:01 (its copy at 00:00:30 is over 5 minutes ahead of its arrival:
    # invalid), e1 once though re-sent, e4, e9, e2, e3; not e5 (the day before), e7 (the day
    # after) or the bad JSON. Arrival is not filtered here: window_records does that before.
    from counting.window import BatchWindow

    assert frames.distinct_valid_events(archive_rows(spark), BatchWindow(D)) == 6
    assert frames.distinct_valid_events(archive_rows(spark), BatchWindow(D + dt.timedelta(days=1))) == 1  # e7


def test_re_stamped_retries_beyond_their_share_warn_but_do_not_block(run):
    import pandas as pd

    def totals(share: float):
        return pd.DataFrame([{"version": 1, "total_views": 1000, "recorded_total_views": 1000,
                              "distinct_valid_events": 1000, "restamped_share": share}])

    assert run.validate(totals(0.004), suites.batch_totals(0.01)).success
    over = run.validate(totals(0.05), suites.batch_totals(0.01))
    assert not over.success and not over.blocking
    assert run.validate(totals(0.05), suites.batch_totals(0.10)).success
