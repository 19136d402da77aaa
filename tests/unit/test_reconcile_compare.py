"""The full outer comparison of speed and batch cells, and the archive against Kafka."""

from __future__ import annotations

import datetime as dt

from pyspark.testing import assertDataFrameEqual

from reconcile.compare import divergent_cells
from reconcile.completeness import Gap, check_archive, narrowed_to_records

UTC = dt.timezone.utc
M1 = dt.datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
M2 = dt.datetime(2026, 11, 20, 17, 59, tzinfo=UTC)
CELLS = "video_id string, minute timestamp, views long"


def test_a_cell_on_one_side_only_is_compared_with_zero(spark):
    speed = spark.createDataFrame([("v1", M1, 3), ("v2", M1, 1), ("v4", M2, 7)], CELLS)
    batch = spark.createDataFrame([("v1", M1, 3), ("v3", M1, 2), ("v4", M2, 9)], CELLS)

    divergent, totals = divergent_cells(speed, batch)

    expected = spark.createDataFrame(
        [("v2", M1, 1, 0, 1), ("v3", M1, 0, 2, -2), ("v4", M2, 7, 9, -2)],
        "video_id string, minute timestamp, speed long, batch long, delta long")
    assertDataFrameEqual(divergent, expected)
    assert (totals.cells_compared, totals.cells_divergent) == (4, 3)
    assert (totals.views_speed, totals.views_batch, totals.abs_delta_views) == (11, 14, 5)
    assert (totals.speed_by_hour[3], totals.batch_by_hour[3], totals.speed_by_hour[17]) == (4, 5, 7)


def test_empty_sides_compare_to_nothing(spark):
    empty = spark.createDataFrame([], CELLS)

    divergent, totals = divergent_cells(empty, empty)

    assert divergent.count() == 0
    assert (totals.cells_compared, totals.views_speed, totals.abs_delta_views) == (0, 0, 0)


def test_archive_gaps_are_the_offsets_kafka_has_and_the_files_lack(spark):
    archived = spark.createDataFrame(
        [(0, offset) for offset in (0, 1, 2, 5, 6)] + [(1, offset) for offset in range(4)],
        "partition int, offset long")
    kafka = {0: (0, 9), 1: (0, 4), 2: (2, 4), 3: (0, 0)}

    result = {p.partition: p for p in check_archive(archived, kafka, {0: 9, 1: 4})}

    assert result[0].gaps == [Gap(0, 3, 4), Gap(0, 7, 8)]
    assert (result[0].archived, result[0].archive_hours_records) == (5, 9)
    assert (result[1].gaps, result[1].archived) == ([], 4)
    assert (result[2].gaps, result[2].archived) == ([Gap(2, 2, 3)], 0)
    assert (result[3].gaps, result[3].archived) == ([], 0)
    assert result[0].as_dict()["gaps"][1] == {"partition": 0, "first_offset": 7, "last_offset": 8, "records": 2}


def test_a_repeated_offset_does_not_hide_a_missing_one(spark):
    # Four rows for [0, 4) with the right first and last offsets, but offset 2 is missing.
    archived = spark.createDataFrame([(0, offset) for offset in (0, 1, 1, 3)], "partition int, offset long")

    [result] = check_archive(archived, {0: (0, 4)}, {0: 4})

    assert (result.gaps, result.archived) == ([Gap(0, 2, 2)], 3)


def test_a_hole_is_a_gap_only_where_kafka_holds_a_committed_record(spark):
    holes = [Gap(0, 10, 10),  # a commit marker: Kafka gives no record there
             Gap(0, 20, 29),  # records 21-23 and 27 of a committed transaction, its marker at 28, aborted 24-26
             Gap(1, 3, 8)]  # 3-5 gone with retention (partition 1 starts at 6), 6-8 markers and aborted
    found = spark.createDataFrame([(0, 21), (0, 22), (0, 23), (0, 27)], "partition int, offset long")

    gaps = narrowed_to_records(holes, found, {0: 0, 1: 6})

    assert gaps == [Gap(0, 21, 27, skipped=3), Gap(1, 3, 5)]
    assert [gap.records for gap in gaps] == [4, 3]
