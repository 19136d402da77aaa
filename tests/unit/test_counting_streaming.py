"""The same records through readStream (availableNow) and through a static read count the same."""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter

from pyspark.testing import assertDataFrameEqual

from counting.events import parse_events
from counting.views import count_views_per_minute
from speed_layer.watermark import batch_clock
from tests.support.counting import KAFKA_SCHEMA, kafka_records, view

TEN_MINUTES = dt.timedelta(minutes=10)  # the tests' lateness below is reckoned against it

# Three micro-batches; duplicates of one view are spread over them, so the stream must
# remember them in dedupe state across batches.
BATCHES = [
    [view("e1", "v1", "2026-11-25T13:40:05Z"), view("e2", "v1", "2026-11-25T13:40:06Z"), b"not json",
     view("e3", "v2", "2026-11-25T13:41:00Z")],
    [view("e1", "v1", "2026-11-25T13:40:05Z"), view("e1", "v1", "2026-11-25T13:40:50Z"),
     view("e4", "v1", 1795614060000), view("e3", "v2", "2026-11-25T14:41:30+01:00")],
    [view("e2", "v1", "2026-11-25T13:40:06Z"), view("e5", "v2", "2026-11-25T13:42:00.5Z"),
     view("e6", "v1", "2026-11-25T13:44:59.999Z"), view("e7", "v3", "2026-11-25T13:49:00Z", user_id=3)],
]  # fmt: skip


def _write_batches(spark, directory, batches, timestamps=None) -> None:
    """One Parquet file per batch, modification times in batch order so they stream in order;
    ``timestamps``: each batch's Kafka timestamp (the support module's default otherwise)."""
    first_offset = 0
    written = set()
    for number, values in enumerate(batches):
        stamped = {"timestamp": timestamps[number]} if timestamps else {}
        records = kafka_records(spark, values, first_offset=first_offset, **stamped)
        records.coalesce(1).write.mode("append").parquet(directory)
        first_offset += len(values)
        for name in set(os.listdir(directory)) - written:
            written.add(name)
            stamp = 1_700_000_000 + number
            os.utime(os.path.join(directory, name), (stamp, stamp))


def _stream_counts(spark, directory, checkpoint, clock=True):
    """Run the counter over what is in the directory; the latest absolute count per key wins.
    ``clock``: bound the watermark by the batch's clock, as the counter does."""
    latest = {}

    def keep_latest(batch, _batch_id):
        for row in batch.collect():
            latest[(row.video_id, row.minute)] = row

    records = spark.readStream.schema(KAFKA_SCHEMA).option("maxFilesPerTrigger", 1).parquet(directory)
    query = (
        records.transform(parse_events())
        .transform(count_views_per_minute(TEN_MINUTES,
                                          watermark_bound=batch_clock(records, TEN_MINUTES) if clock else None))
        .writeStream.outputMode("update")
        .foreachBatch(keep_latest)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return list(latest.values()), query.recentProgress


def _static_counts(spark, directory):
    records = spark.read.schema(KAFKA_SCHEMA).parquet(directory)
    return records.transform(parse_events()).transform(count_views_per_minute())


def test_stream_and_batch_count_the_same(spark, tmp_path):
    directory = str(tmp_path / "records")
    _write_batches(spark, directory, BATCHES)

    streamed, progress = _stream_counts(spark, directory, str(tmp_path / "checkpoint"))
    static = _static_counts(spark, directory)

    assert sum(1 for batch in progress if batch["numInputRows"] > 0) == len(BATCHES)
    assertDataFrameEqual(static, streamed)
    assert sorted((row.video_id, row.minute.minute, row.views) for row in streamed) == [
        ("v1", 40, 2), ("v1", 41, 1), ("v1", 44, 1), ("v2", 41, 1), ("v2", 42, 1),
    ]  # fmt: skip


def test_stream_drops_events_behind_the_watermark_that_batch_counts(spark, tmp_path):
    directory = str(tmp_path / "records")
    on_time = [view("e1", "v1", "2026-11-25T13:44:00Z")]
    also_on_time = [view("e2", "v1", "2026-11-25T13:43:00Z")]
    # 14 minutes behind the newest event time: later than the 10-minute watermark. Spark
    # judges lateness against the previous micro-batch's watermark, so the late event
    # comes two batches after the one that moved the watermark.
    late = [view("e3", "v1", "2026-11-25T13:30:00Z")]
    _write_batches(spark, directory, [on_time, also_on_time, late])

    streamed, _ = _stream_counts(spark, directory, str(tmp_path / "checkpoint"))
    static = _static_counts(spark, directory)

    assert sorted((row.minute.minute, row.views) for row in streamed) == [(43, 1), (44, 1)]
    assert sorted((row.minute.minute, row.views) for row in static.collect()) == [(30, 1), (43, 1), (44, 1)]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_one_record_stamped_ahead_of_the_clock_does_not_make_on_time_views_late(spark, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    # A producer whose clock runs fast: Kafka timestamp 4.5 minutes ahead (the broker takes
    # up to 5), event_time 4.5 minutes past that (the rule allows 5): 9 minutes ahead.
    ahead = now + dt.timedelta(minutes=4, seconds=30)
    outlier = [view("e1", "v1", _iso(now - dt.timedelta(minutes=1))), view("e9", "v9", _iso(now + dt.timedelta(minutes=9)))]
    filler = [view("e2", "v2", _iso(now - dt.timedelta(minutes=1)))]
    # Three minutes after its event time: well inside the 10-minute delay.
    on_time = [view("e3", "v1", _iso(now - dt.timedelta(minutes=3)))]
    timestamps = [ahead, now, now + dt.timedelta(seconds=1)]
    directory = str(tmp_path / "records")
    _write_batches(spark, directory, [outlier, filler, on_time], timestamps)

    guarded, progress = _stream_counts(spark, directory, str(tmp_path / "guarded"))
    unguarded, _ = _stream_counts(spark, directory, str(tmp_path / "unguarded"), clock=False)

    def views_per_video(rows):
        totals = Counter()
        for row in rows:
            totals[row.video_id] += row.views
        return dict(totals)

    assert views_per_video(guarded) == {"v1": 2, "v9": 1, "v2": 1}
    # Without the batch clock the outlier moves the watermark to the present: e3 is late.
    assert views_per_video(unguarded) == {"v1": 1, "v9": 1, "v2": 1}
    watermarks = [dt.datetime.fromisoformat(batch["eventTime"]["watermark"].replace("Z", "+00:00"))
                  for batch in progress if "watermark" in batch["eventTime"]]
    assert watermarks and max(watermarks) <= dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
