"""Completeness of the archive for a day's window, proven from archive_hours rows alone."""

from __future__ import annotations

import datetime as dt

from batch_layer.completeness import PartitionSpan, check_completeness, file_gaps, refusal
from counting.window import BatchWindow
from storage.archive import HourCompleteness, SkippedRange

D = dt.date(2026, 11, 25)
BEFORE, AFTER = D - dt.timedelta(days=1), D + dt.timedelta(days=1)
WINDOW = BatchWindow(D)


def row(date, hour, first, last, partition=0, batch=0, records=None) -> HourCompleteness:
    return HourCompleteness(date, hour, partition, batch, first, last,
                            last - first + 1 if records is None else records)


def check(rows, committed=None, kafka_ends=None, skipped=()):
    by_date = {}
    for each in rows:
        by_date.setdefault(each.arrival_date, []).append(each)
    ends_asked = []

    def ends():
        ends_asked.append(True)
        return kafka_ends or {}

    def read_skipped(partition, first, last):
        return sorted((each for each in skipped if each.kafka_partition == partition
                       and first <= each.first_offset <= last), key=lambda each: each.first_offset)

    result = check_completeness(WINDOW, lambda date: by_date.get(date, []), committed or {0: 0}, ends, read_skipped)
    return result, bool(ends_asked)


# Partition 0 from its first offset: the day before, the window (D-1 23h .. D+1 00h), after.
CONTIGUOUS = [row(BEFORE, 10, 0, 99), row(BEFORE, 23, 100, 109), row(D, 0, 110, 199, batch=1),
              row(D, 0, 200, 249, batch=2), row(D, 13, 250, 400, batch=3), row(AFTER, 0, 401, 450, batch=4),
              row(AFTER, 1, 451, 460, batch=4)]


def test_contiguous_offsets_from_before_to_after_the_window_are_complete():
    result, asked_kafka = check(CONTIGUOUS, committed={0: 461})

    assert result.gaps == []
    assert result.spans == {0: PartitionSpan(100, 450, 351)}
    assert result.partitions == [0] and result.hour_rows == 5
    assert not asked_kafka  # the hour after the cutoff proves the archiver passed it


def test_a_missing_row_between_batches_is_named_with_its_offsets_and_neighbours():
    rows = [r for r in CONTIGUOUS if r.batch_id != 2]

    result, _ = check(rows, committed={0: 461})

    assert result.gaps == ["partition 0: offsets 200-249 missing (between 2026-11-25T00 batch 1 and "
                           "2026-11-25T13 batch 3)"]


def test_a_missing_first_hour_of_the_window_is_a_gap():
    rows = [r for r in CONTIGUOUS if (r.arrival_date, r.arrival_hour) != (BEFORE, 23)]

    assert check(rows, committed={0: 461})[0].gaps == [
        "partition 0: offsets 100-109 missing (between 2026-11-24T10 batch 0 and 2026-11-25T00 batch 1)"]


def test_an_archive_that_starts_in_the_window_must_start_at_offset_zero():
    assert check(CONTIGUOUS[1:], committed={0: 461})[0].gaps == [
        "partition 0: offsets 0-99 missing (between the last hour archived before the window and "
        "2026-11-24T23 batch 0)"]


def test_a_missing_last_hour_of_the_window_is_a_gap():
    rows = [r for r in CONTIGUOUS if r.arrival_date != AFTER or r.arrival_hour != 0]

    assert check(rows, committed={0: 461})[0].gaps == [
        "partition 0: offsets 401-450 missing (before the first hour after the cutoff)"]


def test_a_row_holding_fewer_records_than_its_offsets_span_is_a_gap():
    rows = [r if r.batch_id != 3 else row(D, 13, 250, 400, batch=3, records=150) for r in CONTIGUOUS]

    assert check(rows, committed={0: 461})[0].gaps == [
        "partition 0: 1 offsets missing inside 250-400 (2026-11-25T13 batch 3)"]


def test_without_a_later_hour_the_archive_must_reach_the_topic_end():
    rows = CONTIGUOUS[:-2]

    complete, asked_kafka = check(rows, committed={0: 401}, kafka_ends={0: 401})
    behind, _ = check(rows, committed={0: 401}, kafka_ends={0: 500})

    assert complete.gaps == [] and asked_kafka
    assert behind.gaps == ["partition 0: archived up to offset 400 but Kafka's end offset is 500: "
                           "the archiver has not reached the cutoff yet"]


def test_committed_offsets_without_rows_after_the_window_are_a_gap():
    result, _ = check(CONTIGUOUS[:-2], committed={0: 461}, kafka_ends={0: 461})

    assert result.gaps == ["partition 0: offsets 401-460 archived but in no archive hour"]


def test_a_partition_without_records_in_the_window_is_complete_when_its_neighbours_touch():
    quiet = [row(BEFORE, 5, 0, 9, partition=1), row(AFTER, 7, 10, 19, partition=1)]

    result, _ = check(CONTIGUOUS + quiet, committed={0: 461, 1: 20})

    assert result.gaps == [] and 1 not in result.spans and result.partitions == [0, 1]


def test_neighbours_are_looked_for_across_earlier_and_later_days():
    rows = [row(D - dt.timedelta(days=3), 2, 0, 9), row(D, 5, 10, 19), row(D + dt.timedelta(days=4), 0, 20, 29)]

    assert check(rows, committed={0: 30})[0].gaps == []


def test_file_gaps_compare_what_the_files_hold_with_the_rows():
    spans = {0: PartitionSpan(100, 450, 351), 1: PartitionSpan(0, 9, 10)}

    assert file_gaps(spans, {0: (351, 100, 450), 1: (10, 0, 9)}) == []
    assert file_gaps(spans, {0: (301, 100, 450), 2: (5, 0, 4)}) == [
        "partition 0: the archive files hold 301 (100-450) records of the window's hours where "
        "archive_hours lists 351 (100-450)",
        "partition 1: the archive files hold none records of the window's hours where archive_hours lists 10 (0-9)",
        "partition 2: the archive files hold 5 (0-4) records of the window's hours where archive_hours lists none"]


def test_the_refusal_is_one_line_naming_the_first_gaps():
    gaps = [f"partition {p}: offsets 1-2 missing" for p in range(12)]

    message = str(refusal(D, gaps))

    assert "\n" not in message and "partition 9:" in message and "partition 10:" not in message
    assert "and 2 more" in message and "--allow-gaps" in message


def test_rows_before_the_window_on_its_first_date_are_before_it():
    rows = [row(BEFORE, 22, 0, 9), row(BEFORE, 23, 10, 19), row(AFTER, 3, 20, 29)]

    result, _ = check(rows, committed={0: 30})

    assert result.gaps == [] and result.spans == {0: PartitionSpan(10, 19, 10)}


def skipped(first, last, partition=0, batch=0) -> SkippedRange:
    return SkippedRange(partition, first, last, batch)


# Transaction markers and an aborted transaction: offsets no reader receives.
TRANSACTIONAL = [row(BEFORE, 10, 0, 99), row(BEFORE, 23, 100, 109), row(D, 0, 112, 199, batch=1),  # 110-111: two markers
                 row(D, 0, 200, 249, batch=2, records=40),  # 230-239: an aborted transaction and its marker
                 row(D, 13, 250, 400, batch=3), row(AFTER, 1, 405, 450, batch=4)]  # 401-404 skipped
TRANSACTIONAL_SKIPPED = [skipped(110, 110, batch=1), skipped(111, 111, batch=1), skipped(230, 239, batch=2),
                         skipped(401, 402, batch=3), skipped(403, 404, batch=4)]


def test_offsets_the_archiver_recorded_as_skipped_are_not_gaps():
    result, _ = check(TRANSACTIONAL, committed={0: 451}, skipped=TRANSACTIONAL_SKIPPED)
    assert result.gaps == []
    assert result.spans[0] == PartitionSpan(100, 400, 10 + 88 + 40 + 151)


def test_offsets_no_record_and_no_skipped_range_accounts_for_are_gaps():
    result, _ = check(TRANSACTIONAL, committed={0: 451})
    assert result.gaps == [
        f"partition 0: offsets 110-111 missing (between {BEFORE}T23 batch 0 and {D}T00 batch 1)",
        f"partition 0: 10 offsets missing inside 200-249 ({D}T00 batch 2)",
        "partition 0: offsets 401-404 missing (before the first hour after the cutoff)",
    ]
    # A skipped range must start where the run stopped: one further on explains nothing.
    later = [each for each in TRANSACTIONAL_SKIPPED if each.first_offset != 110]
    assert check(TRANSACTIONAL, committed={0: 451}, skipped=later)[0].gaps == [
        f"partition 0: offsets 110-111 missing (between {BEFORE}T23 batch 0 and {D}T00 batch 1)"]


def test_skipped_offsets_at_the_end_count_toward_the_committed_end():
    rows = TRANSACTIONAL[:-1]
    assert check(rows, committed={0: 405}, kafka_ends={0: 405}, skipped=TRANSACTIONAL_SKIPPED)[0].gaps == []
    assert check(rows, committed={0: 405}, kafka_ends={0: 405}, skipped=TRANSACTIONAL_SKIPPED[:-1])[0].gaps == [
        "partition 0: offsets 403-404 archived but in no archive hour"]


def test_rows_outside_the_offsets_the_final_version_read_arrived_after_it():
    from batch_layer.completeness import arrived_after
    from storage.batch_results import BatchVersion

    final = BatchVersion(D, 3, "complete", "fp", input_offsets={0: (100, 400)})
    late = CONTIGUOUS[:-2] + [row(D, 10, 401, 402, batch=9), row(D, 2, 0, 4, partition=1, batch=9)]
    result, _ = check(late, committed={0: 403, 1: 5}, kafka_ends={0: 403, 1: 5})

    assert result.gaps == []  # the offsets run on: only the final version's input tells
    assert arrived_after(result, final) == [
        "partition 0: 2 records arrived in the window's hours after final version 3 read them "
        "(offsets 401-402; a producer clock behind?)",
        "partition 1: 5 records arrived in the window's hours after final version 3 read them "
        "(offsets 0-4; a producer clock behind?)"]
    on_time, _ = check(CONTIGUOUS, committed={0: 461})
    assert arrived_after(on_time, BatchVersion(D, 3, "complete", "fp", input_offsets={0: (100, 450)})) == []


# Records stamped out of offset order: after the window's records (0-109 before it, 110-249
# in it) come the next day's (250-299), then records stamped in the window appended late
# (300-304, in the same archiver batch as next-day records 305-309 whose ranges interleave),
# then more of the next day.
INTERLEAVED = [row(BEFORE, 22, 0, 109), row(D, 5, 110, 249, batch=1), row(AFTER, 2, 250, 299, batch=2),
               row(D, 9, 300, 306, batch=3, records=5), row(AFTER, 3, 302, 309, batch=3, records=5),
               row(AFTER, 4, 310, 320, batch=4)]


def test_records_stamped_into_the_window_after_later_ones_are_no_gap():
    result, asked_kafka = check(INTERLEAVED, committed={0: 321})

    assert result.gaps == [] and not asked_kafka
    assert result.spans == {0: PartitionSpan(110, 306, 145)}


def test_a_lost_batch_among_interleaved_ones_is_a_lasting_gap():
    result, _ = check([r for r in INTERLEAVED if r.batch_id != 2], committed={0: 321})

    assert result.gaps == [f"partition 0: offsets 250-299 missing (between {D}T05 batch 1 and {D}T09 batch 3)"]
    assert result.pending == [] and result.lasting == result.gaps


def test_a_batch_whose_hours_interleave_must_fill_its_range_together():
    rows = [r if r.arrival_hour != 3 else row(AFTER, 3, 302, 309, batch=3, records=4) for r in INTERLEAVED]

    assert check(rows, committed={0: 321})[0].gaps == [f"partition 0: 1 offsets missing inside 300-309 ({D}T09 batch 3)"]


def test_rows_of_far_days_are_read_only_where_the_nearby_ones_leave_a_hole():
    read = []
    rows = {r.arrival_date: [r] for r in [row(D - dt.timedelta(days=6), 2, 0, 9), row(D, 5, 10, 19),
                                          row(D + dt.timedelta(days=6), 0, 20, 29)]}

    def read_date(date):
        read.append(date)
        return rows.get(date, [])

    result = check_completeness(WINDOW, read_date, {0: 30}, lambda: {0: 30})
    assert result.gaps == [] and min(read) == D - dt.timedelta(days=9)
    read.clear()
    check_completeness(WINDOW, lambda date: read.append(date) or [r for r in CONTIGUOUS if r.arrival_date == date],
                       {0: 461}, lambda: {0: 461})
    assert min(read) == D - dt.timedelta(days=2) and max(read) == D + dt.timedelta(days=2)


def test_a_transaction_open_at_the_stable_end_is_a_pending_gap_naming_it():
    rows = CONTIGUOUS[:-2]

    result = check_completeness(WINDOW, lambda date: [r for r in rows if r.arrival_date == date], {0: 401},
                                lambda: {0: 401}, log_ends=lambda: {0: 420})
    closed = check_completeness(WINDOW, lambda date: [r for r in rows if r.arrival_date == date], {0: 401},
                                lambda: {0: 401}, log_ends=lambda: {0: 401})

    assert result.gaps == result.pending == [
        "partition 0: a transaction open at offset 401 holds offsets 401-419 back from readers: "
        "waiting for it to commit or abort (its records may be stamped in the window)"]
    assert result.lasting == [] and closed.gaps == []


def test_an_archiver_behind_the_topic_is_pending_and_a_hole_below_what_it_committed_is_not():
    behind, _ = check(CONTIGUOUS[:-2], committed={0: 401}, kafka_ends={0: 500})
    hole, _ = check([r for r in CONTIGUOUS if r.batch_id != 2], committed={0: 461})

    assert behind.pending == behind.gaps and behind.lasting == []
    assert hole.pending == [] and len(hole.lasting) == 1
