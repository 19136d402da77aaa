"""Day D from archive rows: the counting rules, the window, the cutoff and the statistics."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch_layer.recompute import (
    count_day,
    day_stats,
    events_in_window,
    past_cutoff_events,
    tally_archive,
    top_videos_by_views,
)
from counting.window import BatchWindow
from storage.archive import archive_schema, existing_hour_paths, read_archive
from storage.archive import write_archive_batch
from tests.support.archive_day import D, RECORDS, archive_rows, at
from tests.support.counting import view

WINDOW = BatchWindow(D)


def minute(day_offset: int, hour: int, minute_: int) -> dt.datetime:
    return at(day_offset, hour, minute_)


def test_count_day_counts_the_minutes_of_the_day_from_arrivals_before_the_cutoff(spark):
    counts = events_in_window(archive_rows(spark), WINDOW).transform(count_day(WINDOW))

    expected = spark.createDataFrame(
        [("v3", minute(0, 0, 1), 1), ("v1", minute(0, 10, 0), 1), ("v1", minute(0, 23, 59), 1),
         ("v2", minute(0, 12, 0), 2)],
        "video_id string, minute timestamp, views long")
    assertDataFrameEqual(counts, expected)


def test_tallies_and_statistics_describe_what_was_read_and_rejected(spark):
    records = archive_rows(spark)
    events = events_in_window(records, WINDOW)

    tallies = tally_archive(records, WINDOW)
    stats = day_stats(events, events.transform(count_day(WINDOW)), WINDOW, past_cutoff_events(records, WINDOW))

    assert tallies.by_partition == {0: (3, 0, 2), 1: (8, 0, 7)}
    assert (tallies.records, tallies.before_window, tallies.past_cutoff) == (11, 1, 1)
    assert (stats.events_read, stats.past_cutoff, stats.other_days) == (9, 1, 2)
    assert stats.invalid["bad_json"] == 1 and sum(stats.invalid.values()) == 1
    assert (stats.duplicates_removed, stats.cells, stats.total_views, stats.videos) == (1, 4, 5, 3)
    assert (stats.restamped_events, stats.restamped_extra_views, stats.restamped_sample) == (0, 0, [])


def test_a_retry_re_stamped_into_another_minute_counts_there_and_is_reported(spark):
    """e2 re-sent at 12:01 with a new event_time: the rules count it in both minutes (one
    view more), and the statistics name it."""
    restamped = RECORDS + [(1, 8, at(0, 12, 1, 10), view("e2", "v2", "2026-11-25T12:01:10Z"))]
    records = archive_rows(spark, restamped)
    events = events_in_window(records, WINDOW)

    stats = day_stats(events, events.transform(count_day(WINDOW)), WINDOW, 0)

    assert (stats.cells, stats.total_views) == (5, 6)
    assert (stats.restamped_events, stats.restamped_extra_views, stats.restamped_sample) == (1, 1, ["v2/e2: 2 cells"])


def test_past_cutoff_counts_the_valid_views_of_the_day_that_arrived_in_the_hour_after_the_cutoff(spark):
    after = [(2, 0, at(1, 1, 30), view("p1", "v1", "2026-11-25T23:59:00Z")),  # counted in past_cutoff
             (2, 1, at(1, 1, 31), view("p1", "v1", "2026-11-25T23:59:00Z")),  # re-sent: an event again
             (2, 2, at(1, 1, 40), view("p2", "v1", "2026-11-26T01:39:00Z")),  # a view of the next day
             (2, 3, at(1, 1, 45), b'{"event_id": "p3"'),  # malformed
             (2, 4, at(1, 2, 0), view("p4", "v1", "2026-11-25T23:59:00Z"))]  # past the hour after it

    # RECORDS holds e9, a view of D at the cutoff itself.
    assert past_cutoff_events(archive_rows(spark, RECORDS + after), WINDOW) == 3
    assert WINDOW.hours_after_cutoff(dt.timedelta(hours=1)) == [(dt.date(2026, 11, 26), 1)]
    assert BatchWindow(D, dt.timedelta(minutes=90)).hours_after_cutoff(dt.timedelta(hours=1)) == [
        (dt.date(2026, 11, 26), 2)]  # the cutoff's own hour is among the window's


def test_top_videos_rank_by_views_then_video_id(spark):
    counts = spark.createDataFrame(
        [("b", minute(0, 1, 0), 2), ("a", minute(0, 2, 0), 1), ("a", minute(0, 3, 0), 1), ("c", minute(0, 1, 0), 5),
         ("d", minute(0, 1, 0), 1)],
        "video_id string, minute timestamp, views long")

    assert top_videos_by_views(counts) == [(1, "c", 5), (2, "a", 2), (3, "b", 2), (4, "d", 1)]
    assert top_videos_by_views(counts, limit=2) == [(1, "c", 5), (2, "a", 2)]


def test_an_empty_day_counts_nothing(spark):
    for records in (read_archive(spark, "file:///nowhere", []), archive_rows(spark, RECORDS[:1])):
        events = events_in_window(records, WINDOW)
        stats = day_stats(events, events.transform(count_day(WINDOW)), WINDOW, past_cutoff_events(records, WINDOW))
        assert (stats.events_read, stats.cells, stats.total_views, stats.videos) == (0, 0, 0, 0)


def test_reads_only_the_archive_hours_asked_for_in_the_archivers_layout(spark, tmp_path):
    root = f"file://{tmp_path}/archive"
    rows = archive_rows(spark).withColumns({
        "arrival_date": F.to_date("kafka_timestamp"), "arrival_hour": F.hour("kafka_timestamp")})
    write_archive_batch(rows, root, batch_id=7)

    paths = existing_hour_paths(spark, root, WINDOW.hours())
    records = read_archive(spark, root, list(paths.values()))

    assert sorted(paths) == [(dt.date(2026, 11, 24), 23), (D, 10), (D, 12), (dt.date(2026, 11, 26), 0)]
    assert sorted(paths) == sorted(set(paths) & set(WINDOW.hours()))
    assert records.count() == 10  # every record but the one at 01:00 the day after
    assert records.columns == list(archive_schema().names)
