"""Which offsets of an archiver batch's range Kafka gave it no record for."""

from __future__ import annotations

from storage.archive import SkippedRange, skipped_ranges, skipped_within


def test_the_offsets_a_batch_did_not_receive_are_ranges_starting_after_a_record_or_at_its_start(spark):
    received = {0: list(range(100, 110)),  # every offset of its range
                1: [52, 53, 57, 58],  # 50-51 before the first, 54-56 between, 59-60 after the last
                2: []}  # only an aborted transaction's records and marker
    rows = spark.createDataFrame([(p, o) for p, offsets in received.items() for o in offsets],
                                 "partition int, offset long")
    ranges = skipped_ranges(rows, 7, {0: 100, 1: 50, 2: 30}, {0: 110, 1: 61, 2: 34},
                            {p: len(offsets) for p, offsets in received.items()})

    assert ranges == [SkippedRange(1, 50, 51, 7), SkippedRange(1, 54, 56, 7), SkippedRange(1, 59, 60, 7),
                      SkippedRange(2, 30, 33, 7)]
    assert sum(r.offsets for r in ranges if r.kafka_partition == 1) == 11 - 4


def test_a_batch_that_received_every_offset_is_not_looked_at_again(spark):
    rows = spark.createDataFrame([(0, 5)], "partition int, offset long")
    assert skipped_ranges(rows.filter("offset < 0"), 1, {0: 5}, {0: 6}, {0: 1}) == []


def test_only_ranges_starting_inside_count_and_only_up_to_its_end():
    ranges = [SkippedRange(0, 10, 12, 1), SkippedRange(0, 20, 29, 1)]
    assert skipped_within(ranges, 10, 29) == 13
    assert skipped_within(ranges, 11, 25) == 6
    assert skipped_within(ranges, 13, 19) == 0
