"""Causes proven from occurrences and the speed micro-batch log, one cell per rule."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from reconcile.causes import classify
from reconcile.consumption import cell_evidence, occurrence_status, ranges_frame
from reconcile.speed_log import ConsumedRange

UTC = dt.timezone.utc
M = dt.datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
M_US = int(M.timestamp() * 1_000_000)
WATERMARK_MS = M_US // 1000 + 30_000  # batch 1 drops what is at or before M + 30 s
OCCURRENCE_SCHEMA = ("video_id string, minute timestamp, event_id string, partition int, offset long, "
                     "event_time_us long, in_archive boolean, past_cutoff boolean")


def occurrence(video, event_id, partition, offset, seconds=0.0, in_archive=True, past_cutoff=False):
    return (video, M, event_id, partition, offset, M_US + int(seconds * 1_000_000), in_archive, past_cutoff)


OCCURRENCES = [
    # A: a3 sits exactly on batch 1's watermark (late); a4 one microsecond after it (counted).
    occurrence("A", "a1", 0, 0, 1), occurrence("A", "a2", 0, 1, 2),
    occurrence("A", "a3", 0, 5, 30), occurrence("A", "a4", 0, 6, 30.000001),
    occurrence("B", "b1", 1, 0), occurrence("B", "b2", 1, 1),  # counted; the speed row lost them
    occurrence("C", "c1", 1, 7),  # beyond what speed has read (batch ends at 5)
    occurrence("D", "d1", 2, 0), occurrence("D", "d2", 2, 1, in_archive=False),  # d2 only in Kafka
    occurrence("E", "e1", 3, 0), occurrence("E", "e1", 3, 1), occurrence("E", "e2", 3, 2),  # e1 re-sent
    occurrence("G", "g1", 0, 7, 10), occurrence("G", "g2", 0, 2),  # g1 late, g2 counted
    occurrence("H", "h1", 1, 2),
    # I: i1 twice in batch 0, again in batch 1 with i2: one repeat in each batch, two in all.
    occurrence("I", "i1", 4, 0, 40), occurrence("I", "i1", 4, 1, 40), occurrence("I", "i1", 4, 2, 40),
    occurrence("I", "i2", 4, 3, 41),
    # J: j2 arrived after the cutoff (read back from Kafka past the window), counted by batch 2.
    occurrence("J", "j1", 5, 0), occurrence("J", "j2", 5, 9, 15, in_archive=False, past_cutoff=True),
    # K: k1 arrived after the cutoff too, but batch 2's watermark dropped it.
    occurrence("K", "k1", 5, 1), occurrence("K", "k2", 5, 10, 5, in_archive=False, past_cutoff=True),
    # L: l1 again after the cutoff (a client retry): speed counted the id once, in the window.
    occurrence("L", "l1", 5, 2), occurrence("L", "l1", 5, 11, 15, in_archive=False, past_cutoff=True),
]
RANGES = [
    ConsumedRange("q", 0, 0, 0, 3, 0), ConsumedRange("q", 1, 0, 3, 10, WATERMARK_MS),
    ConsumedRange("q", 0, 1, 0, 5, 0), ConsumedRange("q", 0, 2, 0, 2, 0),
    ConsumedRange("q", 0, 3, 0, 3, 0), ConsumedRange("q", 0, 4, 0, 2, 0),
    ConsumedRange("q", 1, 4, 2, 2_500, WATERMARK_MS),  # spans three offset buckets
    # Batch 2 drops what is at or before M + 10 s.
    ConsumedRange("q", 1, 5, 0, 9, 0), ConsumedRange("q", 2, 5, 9, 12, WATERMARK_MS - 20_000),
]
# video: (speed, batch, expected cause)
CELLS = {
    "A": (3, 4, "late"),
    "B": (0, 2, "missing_in_speed"),
    "C": (0, 1, "missing_in_speed"),
    "D": (2, 1, "missing_in_archive"),
    "E": (3, 2, "duplicate"),
    "F": (5, 0, "other"),  # no event behind it at all
    "G": (0, 2, "missing_in_speed"),  # partly late, but speed also lost a counted event
    "H": (1, 2, "other"),  # the archive no longer holds what the batch counted
    "I": (3, 2, "duplicate"),  # one batch replayed without dedupe state
    "J": (2, 1, "after_cutoff"),
    "K": (2, 1, "other"),  # the view after the cutoff was dropped as late: nothing explains 2
    "L": (2, 1, "other"),  # a retry of a counted id is not a view of its own
}


def classified(spark, cells=CELLS):
    divergent = spark.createDataFrame(
        [(video, M, speed, batch, speed - batch) for video, (speed, batch, _) in cells.items()],
        "video_id string, minute timestamp, speed long, batch long, delta long")
    status = occurrence_status(spark.createDataFrame(OCCURRENCES, OCCURRENCE_SCHEMA), ranges_frame(spark, RANGES))
    return classify(divergent, cell_evidence(status))


def test_every_cell_gets_the_cause_its_evidence_proves(spark):
    causes = {row.video_id: row.cause for row in classified(spark).collect()}

    assert causes == {video: cause for video, (_, _, cause) in CELLS.items()}


def test_evidence_tallies_distinct_ids(spark):
    rows = {row.video_id: row for row in classified(spark).collect()}

    a, d, e, i = rows["A"], rows["D"], rows["E"], rows["I"]
    assert (a.archived_ids, a.counted_archived_ids, a.late_ids, a.unconsumed_ids) == (4, 3, 1, 0)
    assert (d.archived_ids, d.counted_ids, d.gap_counted_ids) == (1, 2, 1)
    assert (e.counted_ids, e.repeats_total, list(e.repeats_by_batch)) == (2, 1, [1])
    assert (i.counted_ids, i.repeats_total, list(i.repeats_by_batch)) == (2, 2, [1])
    assert rows["C"].unconsumed_ids == 1 and rows["F"].archived_ids == 0
    j, k, l_ = rows["J"], rows["K"], rows["L"]
    # An occurrence after the cutoff is in no tally of the window, whatever speed did with it.
    assert (j.archived_ids, j.counted_ids, j.counted_archived_ids, j.gap_counted_ids) == (1, 1, 1, 0)
    assert (j.after_cutoff_ids, k.after_cutoff_ids, l_.after_cutoff_ids) == (1, 0, 0)
    assert (l_.counted_ids, l_.repeats_total) == (1, 0)


def test_an_excess_no_repeat_explains_is_not_a_duplicate(spark):
    cells = {"I": (5, 2, None), "A": (2, 4, None)}  # 3 extra views of I; A lacks one more than was late

    causes = {row.video_id: row.cause for row in classified(spark, cells).collect()}

    assert causes == {"I": "other", "A": "missing_in_speed"}


def test_an_occurrence_read_by_two_queries_counts_if_either_kept_it(spark):
    ranges = [ConsumedRange("old", 0, 0, 0, 10, WATERMARK_MS), ConsumedRange("new", 0, 0, 0, 10, 0)]
    occurrences = spark.createDataFrame([occurrence("A", "a1", 0, 0, 1)], OCCURRENCE_SCHEMA)

    row = occurrence_status(occurrences, ranges_frame(spark, ranges)).select(
        "consumed", "counted", F.col("counted_by.query_id").alias("by")).first()

    assert (row.consumed, row.counted, row.by) == (True, True, "new")


def test_a_rebuild_does_not_consume_the_minutes_before_its_write_floor(spark):
    # A rebuild never wrote the minutes before its floor: only the older query counted them.
    floor_ms = WATERMARK_MS + 60_000
    ranges = [ConsumedRange("old", 0, 0, 0, 2, 0), ConsumedRange("rebuild", 0, 0, 0, 4, 0, floor_ms)]
    occurrences = spark.createDataFrame(
        [("A", M, "before", 0, 0, (floor_ms - 1) * 1000, True, False),
         ("A", M, "gone", 0, 2, (floor_ms - 1) * 1000, True, False),
         ("B", M, "from", 0, 3, floor_ms * 1000, True, False)], OCCURRENCE_SCHEMA)

    rows = occurrence_status(occurrences, ranges_frame(spark, ranges)).select(
        "event_id", "consumed", F.col("counted_by.query_id").alias("by")).collect()

    assert {row.event_id: (row.consumed, row.by) for row in rows} == {
        "before": (True, "old"), "gone": (False, None), "from": (True, "rebuild")}


def test_an_event_before_1970_is_late_even_in_the_first_batch(spark):
    # Spark compares event times with the first batch's watermark too, and that is 0.
    year_one_us = int(dt.datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    occurrences = spark.createDataFrame(
        [("A", M, "old", 0, 0, year_one_us, True, False), ("A", M, "epoch", 0, 1, 0, True, False),
         ("A", M, "new", 0, 2, 1, True, False)], OCCURRENCE_SCHEMA)

    rows = occurrence_status(occurrences, ranges_frame(spark, [ConsumedRange("q", 0, 0, 0, 3, 0)])).collect()

    assert {row.event_id: (row.consumed, row.counted) for row in rows} == {
        "old": (True, False), "epoch": (True, False), "new": (True, True)}


def test_naming_the_divergent_videos_parses_fewer_records_and_finds_every_occurrence_of_them(spark):
    from pyspark.sql import functions as F

    from counting.window import BatchWindow
    from reconcile.evidence import naming_any_of, occurrences
    from tests.support.archive_day import RECORDS, archive_rows, at

    # v1 written with an escape: its JSON text does not hold "v1" literally.
    escaped = (2, 9, at(0, 11, 0),
               b'{"event_id": "e9", "video_id": "\\u0076\\u0031", "event_time": "2026-11-25T11:00:00Z"}')
    records = archive_rows(spark, RECORDS + [escaped])
    window = BatchWindow(escaped[2].date())
    everything = occurrences(records, None, window)
    named = occurrences(records, None, window, ["v1"])

    def of_v1(frame):
        return sorted(tuple(row) for row in frame.filter(F.col("video_id") == "v1").collect())

    assert ("e9",) in {(row.event_id,) for row in everything.filter(F.col("video_id") == "v1").collect()}
    assert of_v1(named) == of_v1(everything)
    assert records.filter(naming_any_of(["v1"])).count() < records.count()  # v2, v3 are not parsed
    assert naming_any_of([f"v{index}" for index in range(1000)]) is None  # too many: parse all


def test_views_of_the_day_that_arrived_after_the_cutoff_are_marked_and_searched_a_day_long(spark):
    from counting.window import BatchWindow
    from reconcile.evidence import occurrences
    from tests.support.archive_day import RECORDS, archive_rows, at
    from tests.support.counting import view

    after = [(7, 0, at(1, 1, 0), view("a1", "v9", "2026-11-25T23:58:00Z")),  # at the cutoff
             (7, 1, at(2, 0, 59), view("a2", "v9", "2026-11-25T23:58:00Z")),  # within a day of it
             (7, 2, at(2, 1, 0), view("a3", "v9", "2026-11-25T23:58:00Z")),  # a day after it: not searched
             (7, 3, at(1, 1, 5), view("a4", "v9", "2026-11-26T00:05:00Z")),  # a view of the next day
             (7, 4, at(1, 0, 59), view("a5", "v9", "2026-11-25T23:58:00Z"))]  # inside the window
    window = BatchWindow(dt.date(2026, 11, 25))

    rows = occurrences(archive_rows(spark, RECORDS), None, window, None, archive_rows(spark, after)).collect()

    marked = sorted(row.event_id for row in rows if row.past_cutoff)
    assert marked == ["a1", "a2"]
    assert all(not row.in_archive for row in rows if row.past_cutoff)
    assert not any(row.past_cutoff for row in rows if row.partition != 7)


def test_only_what_the_speed_layer_read_after_the_window_is_read_back():
    from reconcile.evidence import read_past_window

    window_ends = {0: 100, 1: 50, 2: 70}
    consumed_ends = {0: 130, 1: 50}  # partition 1: not past the window; 2: never read
    span_ends = {0: 120, 1: 90, 2: 95}  # partition 0: speed read past the day after the cutoff

    assert read_past_window(window_ends, consumed_ends, span_ends) == {0: (100, 120)}
