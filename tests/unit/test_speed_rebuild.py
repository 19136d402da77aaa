"""Which minutes a counter rebuilding the speed table from a new checkpoint may write."""

from __future__ import annotations

import datetime as dt

from speed_layer.rebuild import floor_after, last_read_below, reads_below
from storage.speed_microbatches import LoggedBatch

T0 = dt.datetime(2026, 12, 3, 6, 0, tzinfo=dt.timezone.utc)


def _batch(batch_id: int, start: dict, end: dict, seconds: int) -> LoggedBatch:
    return LoggedBatch(batch_id, start, end, T0 + dt.timedelta(seconds=seconds))


def test_the_floor_is_the_first_minute_after_the_latest_possible_event_time():
    # Appended by 06:00:30: CreateTime up to 5 min ahead, event time up to 5 min after it.
    assert floor_after(T0 + dt.timedelta(seconds=30)) == T0 + dt.timedelta(minutes=11)
    # An event at exactly 06:10:00 counts in minute 06:10, so that minute is not whole either.
    assert floor_after(T0) == T0 + dt.timedelta(minutes=11)
    assert floor_after(T0 - dt.timedelta(microseconds=1)) == T0 + dt.timedelta(minutes=10)


def test_a_batch_reads_below_offsets_only_where_it_read_something_below_them():
    assert reads_below(_batch(0, {0: 0, 1: 0}, {0: 10, 1: 0}, 0), {0: 5, 1: 5})
    assert not reads_below(_batch(1, {0: 10, 1: 0}, {0: 20, 1: 0}, 0), {0: 5, 1: 5}), "partition 1 read nothing"
    assert not reads_below(_batch(2, {0: 5}, {0: 9}, 0), {0: 5})
    assert not reads_below(_batch(3, {7: 0}, {7: 9}, 0), {0: 5}), "a partition the topic no longer has"


def test_the_last_batch_that_read_an_expired_offset_is_found_in_the_last_bucket_that_starts_below():
    buckets = {
        0: [_batch(0, {0: 0}, {0: 100}, 10), _batch(1, {0: 100}, {0: 200}, 20)],
        1: [_batch(2, {0: 200}, {0: 300}, 30), _batch(3, {0: 300}, {0: 300}, 40), _batch(4, {0: 300}, {0: 400}, 50)],
        2: [_batch(5, {0: 400}, {0: 500}, 60)],
    }
    firsts = [(bucket, batches[0]) for bucket, batches in buckets.items()]
    read = []

    def read_bucket(bucket):
        read.append(bucket)
        return buckets[bucket]

    # Offsets below 350 were read last by batch 4 (batch 3 read nothing).
    assert last_read_below(firsts, read_bucket, {0: 350}) == T0 + dt.timedelta(seconds=50)
    assert read == [1]
    assert last_read_below(firsts, read_bucket, {0: 250}) == T0 + dt.timedelta(seconds=30)
    assert last_read_below(firsts, read_bucket, {0: 0}) is None
    # Bucket 1 starts below 201, but with a batch that read nothing: bucket 0 answers.
    buckets[1] = [_batch(2, {0: 200}, {0: 200}, 30)]
    firsts = [(bucket, batches[0]) for bucket, batches in buckets.items()]
    assert last_read_below(firsts, read_bucket, {0: 201}) == T0 + dt.timedelta(seconds=20)


def test_buckets_without_a_batch_of_the_topic_are_skipped():
    firsts = [(0, None), (1, _batch(10_000, {0: 0}, {0: 10}, 5))]
    assert last_read_below(firsts, lambda bucket: [firsts[1][1]] if bucket == 1 else [], {0: 5}) == \
        T0 + dt.timedelta(seconds=5)


def test_a_rebuild_reads_its_whole_backlog_and_refuses_a_bound_it_was_given():
    import argparse

    import pytest

    from speed_layer import jobs
    from speed_layer.kafka_source import SourceOptions
    from speed_layer.rebuild import whole_backlog
    from settings.errors import UserError

    parser = argparse.ArgumentParser()
    jobs.add_common_arguments(parser, default_checkpoint="counter")

    def source(*argv: str) -> SourceOptions:
        return jobs.source_from_args(parser.parse_args(list(argv)))

    def rebuild(*argv: str) -> SourceOptions:
        given = parser.parse_args(list(argv)).max_offsets_per_trigger is not None
        return whole_backlog(source(*argv), bound_given=given)

    assert source().max_offsets_per_trigger == SourceOptions.max_offsets_per_trigger
    # Left out (the default bound) or 0: one batch for the whole backlog.
    assert rebuild().max_offsets_per_trigger is None
    assert rebuild("--max-offsets-per-trigger", "0").max_offsets_per_trigger is None
    with pytest.raises(UserError, match="refuses --max-offsets-per-trigger 400: Spark splits") as refused:
        rebuild("--max-offsets-per-trigger", "400")
    assert "\n" not in str(refused.value)
    # Ordinary runs keep their bound.
    assert source("--max-offsets-per-trigger", "400").max_offsets_per_trigger == 400


def test_a_checkpoint_planned_a_batch_while_its_offset_log_holds_one(spark, tmp_path):
    from speed_layer.microbatch_log import planned_a_batch

    checkpoint = tmp_path / "counts"
    assert not planned_a_batch(spark, str(checkpoint))
    (checkpoint / "offsets").mkdir(parents=True)
    (checkpoint / "offsets" / ".0.crc").write_text("")  # no batch file: a start that stopped before planning
    assert not planned_a_batch(spark, str(checkpoint))
    (checkpoint / "offsets" / "105").write_text("v1\n{}\n")  # Spark purged the batches before 105
    assert planned_a_batch(spark, str(checkpoint))


def test_a_local_checkpoint_is_known_to_hold_a_query_without_a_jvm(tmp_path):
    from speed_layer.microbatch_log import holds_query_locally

    counts = tmp_path / "counts"
    assert holds_query_locally(str(counts)) is False
    counts.mkdir()
    assert holds_query_locally(str(counts)) is False, "a folder without Spark's metadata holds no query"
    (counts / "metadata").write_text('{"id":"5c0ffee0-0000-4000-8000-000000000000"}\n')
    assert holds_query_locally(str(counts)) is True
    assert holds_query_locally(counts.as_uri()) is True
    assert holds_query_locally("s3a://viewcount/checkpoints/counter/counts") is None, "read through Spark"


def test_a_rebuild_of_a_checkpoint_that_holds_a_query_is_refused_before_spark(tmp_path):

    import pytest

    from speed_layer.counter import CounterOptions, refuse_before_spark
    from settings.errors import UserError
    from settings.environment import Settings

    options = CounterOptions(checkpoint=str(tmp_path))
    (tmp_path / "counts").mkdir()
    (tmp_path / "counts" / "metadata").write_text('{"id":"5c0ffee0-0000-4000-8000-000000000000"}\n')
    # No server is asked: the settings point at none.
    settings = Settings.from_env().replaced(cassandra_hosts=("192.0.2.1",))
    with pytest.raises(UserError, match="--rebuild starts a new checkpoint, but .* already holds one") as refused:
        refuse_before_spark(settings, options, rebuild=True)
    assert "\n" not in str(refused.value)
    refuse_before_spark(settings, options, rebuild=False)  # a restart: new_checkpoint_floor's to decide
    refuse_before_spark(settings, CounterOptions(checkpoint="s3a://viewcount/checkpoints/counter"), rebuild=True)
