"""Each real server works from Python: Kafka, Cassandra, MinIO, and Spark's connectors."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest

pytestmark = pytest.mark.integration


def test_kafka_produce_and_consume_round_trip(stack, unique_topic):
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    sent = [(f"video-{i}".encode(), f'{{"n": {i}}}'.encode()) for i in range(20)]
    for key, value in sent:
        producer.send(unique_topic, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(unique_topic, bootstrap_servers=stack.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    received = sorted((record.key, record.value) for record in consumer)
    consumer.close()
    assert received == sorted(sent)


def test_views_and_dlq_topics_exist_with_configured_partitions(stack):
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).list_topics(timeout=10).topics
    assert len(topics[stack.views_topic].partitions) == 6
    assert stack.dlq_topic in topics


def test_the_cell_feed_topic_exists_compacted_and_unbounded_in_record_time(stack):
    """`stack up` creates the counter's cell feed: compacted (newest value per cell) and
    deleted after a few days, none of the views topic's bounds on record timestamps."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    from storage.topics import CELLS_RETENTION_MS

    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    topic = admin.list_topics(timeout=10).topics[stack.cells_topic]
    assert len(topic.partitions) == stack.topics.cells_partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, stack.cells_topic)
    configs = {name: entry.value for name, entry in admin.describe_configs([resource])[resource].result().items()}
    assert configs["cleanup.policy"] == "compact,delete"
    assert configs["retention.ms"] == str(CELLS_RETENTION_MS)
    assert configs["min.insync.replicas"] == str(stack.topics.topic_min_insync_replicas)
    assert configs["message.timestamp.before.max.ms"] == str(2**63 - 1)  # Kafka's default: unbounded


def test_cassandra_minute_counts_are_absolute_upserts(cassandra_session):
    from storage.minute_counts import MinuteCount, read_minute_counts, upsert_minute_counts

    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    minute = dt.datetime(2026, 11, 25, 13, 45, tzinfo=dt.timezone.utc)
    rows = [MinuteCount(video_id, minute, 7), MinuteCount(video_id, minute.replace(minute=46), 3)]
    upsert_minute_counts(cassandra_session, rows)
    upsert_minute_counts(cassandra_session, rows)  # a replay writes the same values
    assert read_minute_counts(cassandra_session, video_id, minute.date()) == rows

    upsert_minute_counts(cassandra_session, [MinuteCount(video_id, minute, 9)])
    assert read_minute_counts(cassandra_session, video_id, minute.date())[0].views == 9


def test_a_whole_day_of_one_video_is_written_in_partition_batches(cassandra_session):
    from storage.minute_counts import (ROWS_PER_BATCH, MinuteCount, read_minute_counts,
                                       upsert_minute_counts)

    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    midnight = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
    day = [MinuteCount(video_id, midnight + dt.timedelta(minutes=m), m + 1) for m in range(1440)]
    # Another video's minutes interleaved: rows are grouped per partition, none lost.
    other = [MinuteCount(video_id + "-b", row.minute, 2) for row in day[: ROWS_PER_BATCH + 1]]
    interleaved = [row for pair in zip(day, other) for row in pair] + day[len(other):]
    assert upsert_minute_counts(cassandra_session, interleaved) == len(day) + len(other)
    assert read_minute_counts(cassandra_session, video_id, midnight.date()) == day
    assert read_minute_counts(cassandra_session, video_id + "-b", midnight.date()) == other


def test_migrations_are_recorded_and_reapplying_is_a_no_op(stack, cassandra_session):
    from storage.cassandra import applied_migrations, apply_migrations, migration_files

    assert apply_migrations(stack) == []
    recorded = set(applied_migrations(cassandra_session))
    assert recorded == {path.name for path in migration_files()}


def test_s3_put_get_and_spark_reads_parquet_through_s3a(stack, spark):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from storage.s3 import client

    s3 = client(stack)
    key = f"tests/{uuid.uuid4().hex}/part-0.parquet"
    table = pa.table({"video_id": ["a", "b", "c"], "views": [1, 2, 3]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3.put_object(Bucket=stack.s3_bucket, Key=key, Body=buffer.getvalue())
    assert s3.get_object(Bucket=stack.s3_bucket, Key=key)["Body"].read() == buffer.getvalue()

    folder = key.rsplit("/", 1)[0]
    rows = spark.read.parquet(f"s3a://{stack.s3_bucket}/{folder}/").orderBy("video_id").collect()
    assert [(row.video_id, row.views) for row in rows] == [("a", 1), ("b", 2), ("c", 3)]


def test_spark_reads_a_topic_through_the_kafka_connector(stack, spark, unique_topic):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    for i in range(30):
        producer.send(unique_topic, key=b"v", value=str(i).encode(), timestamp_ms=1_764_000_000_000 + i)
    producer.flush()
    producer.close()

    frame = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
        .option("subscribe", unique_topic)
        .load()
    )
    rows = frame.selectExpr(
        "CAST(value AS STRING) AS v", "unix_millis(timestamp) AS timestamp_ms", "partition"
    ).collect()
    assert sorted(int(row.v) for row in rows) == list(range(30))
    assert len({row.partition for row in rows}) == 1  # one key -> one partition
    assert sorted(row.timestamp_ms for row in rows) == [1_764_000_000_000 + i for i in range(30)]


@pytest.fixture(params=["jvm", "python"])
def writer_settings(request, stack):
    """The stack's settings with each of the two cell writers (``VIEWCOUNT_CASSANDRA_WRITER``)."""
    return stack.replaced(cassandra=stack.cassandra.model_copy(update={"writer": request.param}))


def test_spark_dataframe_writer_upserts_minute_counts(spark, writer_settings, cassandra_session):
    from storage.minute_counts import MinuteCount, read_minute_counts, write_minute_counts

    stack = writer_settings

    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    counts = spark.createDataFrame(
        [(video_id, "2026-11-25 23:59:00", 4), (video_id, "2026-11-26 00:00:00", 6)],
        "video_id string, minute string, views long",
    ).selectExpr("video_id", "to_timestamp(minute) AS minute", "views")
    assert write_minute_counts(counts, stack) == 2
    write_minute_counts(counts, stack)  # replaying a micro-batch changes nothing
    utc = dt.timezone.utc
    assert read_minute_counts(cassandra_session, video_id, dt.date(2026, 11, 25)) == [
        MinuteCount(video_id, dt.datetime(2026, 11, 25, 23, 59, tzinfo=utc), 4)]
    assert read_minute_counts(cassandra_session, video_id, dt.date(2026, 11, 26)) == [
        MinuteCount(video_id, dt.datetime(2026, 11, 26, 0, 0, tzinfo=utc), 6)]


def test_an_earlier_batchs_late_writer_cannot_overwrite_a_later_batchs_count(spark, writer_settings,
                                                                             cassandra_session):
    """Speed cells carry their batch's write timestamp: batch N's count (7) stays when a
    leftover writer of batch N-1 (a dead driver's executor) writes its older count (5)
    afterwards; with the client's clock as timestamp the older count would have won."""
    import time

    from storage.minute_counts import MinuteCount, read_minute_counts, write_minute_counts

    stack = writer_settings
    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    minute = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)

    def views(n):
        return spark.createDataFrame([(video_id, "2026-11-25 12:00:00", n)], "video_id string, minute string, views long"
                                     ).selectExpr("video_id", "to_timestamp(minute) AS minute", "views")

    batch_n = int(time.time() * 1_000_000)
    write_minute_counts(views(7), stack, write_timestamp=batch_n)
    write_minute_counts(views(5), stack, write_timestamp=batch_n - 1_000)  # batch N-1, arriving late

    assert read_minute_counts(cassandra_session, video_id, minute.date()) == [MinuteCount(video_id, minute, 7)]
