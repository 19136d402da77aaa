"""Kafka topics the system owns, created idempotently."""

from __future__ import annotations

import os

from storage.kafka_config import client_config
from storage.settings import Settings

# Local stack keeps every record (replays of past days must not be expired on arrival);
# production sets retention to at least the batch cutoff plus the reprocessing window.
DEFAULT_RETENTION_MS = "-1"


def topic_specs(settings: Settings) -> dict[str, int]:
    return {
        settings.views_topic: int(os.environ.get("VIEWCOUNT_VIEWS_PARTITIONS", "6")),
        settings.dlq_topic: int(os.environ.get("VIEWCOUNT_DLQ_PARTITIONS", "3")),
    }


def ensure_topics(settings: Settings, specs: dict[str, int] | None = None) -> list[str]:
    """Create missing topics; returns the names created now."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config(settings))
    existing = set(admin.list_topics(timeout=10).topics)
    retention = os.environ.get("VIEWCOUNT_TOPIC_RETENTION_MS", DEFAULT_RETENTION_MS)
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=1,
                 config={"retention.ms": retention})
        for name, partitions in (specs or topic_specs(settings)).items()
        if name not in existing
    ]
    if not missing:
        return []
    for name, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
        except Exception as error:  # noqa: BLE001 - a concurrent creator is fine
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
    return [topic.topic for topic in missing]


def partition_offsets(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """(earliest, end) offset of every partition of a topic."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(client_config(settings, **{"group.id": "viewcount-offsets"}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            for partition in partitions
        }
    finally:
        consumer.close()
