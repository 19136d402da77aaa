"""Read-only looks at what landed: Kafka end offsets, dead letters by reason, speed counts."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from settings.environment import Settings

MS_PER_DAY = 86_400_000


def topic_end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    from storage.topics import partition_offsets

    return {partition: end for partition, (_, end) in partition_offsets(settings, topic).items()}


def dead_letter_reasons(settings: Settings) -> Counter:
    """Every record of the dead-letter topic, counted by its `reason` header."""
    from confluent_kafka import Consumer, TopicPartition

    from storage.kafka_config import client_config

    ends = topic_end_offsets(settings, settings.dlq_topic)
    consumer = Consumer(client_config(settings, **{"group.id": "viewcount-inspect", "enable.auto.commit": False}))
    reasons: Counter = Counter()
    try:
        consumer.assign([TopicPartition(settings.dlq_topic, p, 0) for p, end in ends.items() if end])
        remaining = sum(ends.values())
        while remaining > 0:
            message = consumer.poll(10)
            if message is None:
                break
            if message.error():
                continue
            reasons[dict(message.headers() or []).get("reason", b"?").decode()] += 1
            remaining -= 1
    finally:
        consumer.close()
    return reasons


def speed_counts_for(settings: Settings, videos: set[str], day: dt.date) -> dict[tuple[str, int], int]:
    """(video_id, minute epoch ms) -> views of the speed table for these videos on one day."""
    from cassandra.concurrent import execute_concurrent_with_args

    from storage.cassandra import connect

    session = connect(settings)
    try:
        statement = session.prepare(
            "SELECT video_id, minute, views FROM speed_minute_views WHERE video_id = ? AND day = ?")
        results = execute_concurrent_with_args(session, statement, [(video, day) for video in videos],
                                               concurrency=64)
        counts = {}
        for success, rows in results:
            for row in rows:
                minute = row.minute.replace(tzinfo=dt.timezone.utc)
                counts[(row.video_id, int(minute.timestamp() * 1000))] = row.views
        return counts
    finally:
        session.cluster.shutdown()
