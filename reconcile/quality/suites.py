"""The expectation suites: what must hold of the raw archive, a batch version and a
reconciliation before day D may be promoted.

Expectations marked ``critical`` stop the nightly run before promotion when they fail;
the others are reported in the Data Docs only. Each suite runs on a DataFrame the caller
prepares (``frames``): the raw records of the day's arrival window (schema), their
per-partition offset spans, the profile of the batch's minute counts, and the
reconciliation's divergences. Row-level conditions over the records and the counts are
tallied in one Spark pass per frame and checked on the small result with pandas: Great
Expectations on Spark runs jobs of its own per expectation, seconds each even on a few
rows, whereas the tallies cost one pass over the data at any size.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from storage.reconciliations import CAUSES

CRITICAL = {"critical": True}

ARCHIVE_COLUMNS = {
    "topic": "StringType", "partition": "IntegerType", "offset": "LongType",
    "kafka_timestamp": "TimestampType", "key": "BinaryType", "value": "BinaryType",
}


def archive_records() -> gx.ExpectationSuite:
    """On the records (their schema only: no Spark job runs)."""
    suite = gx.ExpectationSuite(name="archive_records")
    for column, type_name in ARCHIVE_COLUMNS.items():
        suite.add_expectation(gxe.ExpectColumnToExist(column=column, meta=CRITICAL))
        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=column, type_=type_name, meta=CRITICAL))
    return suite


def archive_offsets() -> gx.ExpectationSuite:
    """On one row per Kafka partition (``frames.offsets_per_partition``): every record has
    its Kafka coordinates, and the window's offsets have no hole (but the offsets the
    archiver recorded as holding no record, and those archived as records of other hours,
    stamped out of offset order) and no repeat (a Kafka record archived twice
    would be counted twice by anything but a dedupe)."""
    suite = gx.ExpectationSuite(name="archive_offsets")
    for column in ("topic", "partition"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column, meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="missing_coordinates", value_set=[0],
                                                          meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="records_and_skipped", column_B="offset_span",
                                                              meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="records", column_B="distinct_offsets",
                                                              meta=CRITICAL))
    return suite


def batch_counts() -> gx.ExpectationSuite:
    """On the one-row profile of a version's minute counts (``frames.counts_profile``): no
    field missing, every count at least 1, each (video_id, minute) once, ids well formed."""
    suite = gx.ExpectationSuite(name="batch_counts")
    for column in ("missing_fields", "malformed_video_ids"):
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[0], meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="min_views", min_value=1, meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="cells", column_B="distinct_cells",
                                                              meta=CRITICAL))
    return suite


def batch_totals(max_restamped_share: float = 0.01) -> gx.ExpectationSuite:
    """On one row: the version's total views equal the distinct valid events of the day,
    recounted from the archive independently of the batch's own statistics; and, as a
    warning (not critical: the rules count them), the views of re-stamped retries stay
    within ``max_restamped_share`` of the day's views."""
    suite = gx.ExpectationSuite(name="batch_totals")
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="restamped_share", min_value=0,
                                                            max_value=max_restamped_share))
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="total_views",
                                                              column_B="distinct_valid_events", meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="total_views",
                                                              column_B="recorded_total_views", meta=CRITICAL))
    return suite


def reconciliation() -> gx.ExpectationSuite:
    """On the divergences: each one well formed, its delta what its sides say."""
    suite = gx.ExpectationSuite(name="reconciliation")
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(
        column="cause", value_set=list(CAUSES), meta=CRITICAL))
    for column in ("speed", "batch"):
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="delta", column_B="speed_minus_batch",
                                                              meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeInSet(column="delta", value_set=[0], meta=CRITICAL))
    suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=["video_id", "minute"], meta=CRITICAL))
    return suite


def reconciliation_summary() -> gx.ExpectationSuite:
    """On one row: the summary's figures agree with each other."""
    suite = gx.ExpectationSuite(name="reconciliation_summary")
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["pass", "fail"], meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="cells_divergent", column_B="causes_total",
                                                              meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="cells_compared", column_B="cells_divergent", or_equal=True, meta=CRITICAL))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="money_well_formed", value_set=[True],
                                                          meta=CRITICAL))
    # Divergences of opposite sign may cancel in the totals, never the other way round.
    suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="abs_delta_views", column_B="abs_total_difference", or_equal=True, meta=CRITICAL))
    return suite
