"""Kafka topics the system owns, created idempotently."""

from __future__ import annotations

from collections import Counter

from counting.reasons import MAX_FUTURE_SECONDS
from settings.errors import UserError
from storage.kafka_config import client_config
from settings.environment import Settings

# The largest record the views topic accepts (Kafka's max.message.bytes, counted after
# compression, per record batch): a producer gets MSG_SIZE_TOO_LARGE for anything bigger,
# and nothing of it is written. Values above counting.reasons.MAX_VALUE_BYTES but within
# this limit reach the counter and are dead-lettered as too_large.
VIEWS_MAX_MESSAGE_BYTES = 1_048_576
# The dead-letter topic takes any views record back with its reason and origin headers,
# so it accepts twice the views limit; the counter's dead-letter producer is allowed the same.
DLQ_MAX_MESSAGE_BYTES = 2 * VIEWS_MAX_MESSAGE_BYTES


# The views topic refuses a record whose timestamp (CreateTime, set by the producer) is
# more than the counting rule's allowance ahead of the broker's clock: one producer with a
# fast clock would otherwise pass the rule (an event_time is judged against its record's
# timestamp) and move the speed layer's watermark ahead of real time, dropping every
# on-time view as late. Kafka's own default lets records an hour ahead in. The producer of
# a refused record gets INVALID_TIMESTAMP and nothing of it is written.
VIEWS_TIMESTAMP_AFTER_MAX_MS = MAX_FUTURE_SECONDS * 1_000
MS_PER_DAY = 86_400_000

# The cell feed (storage.cell_feed) is compacted and deleted: no reader ever needs its
# history. An API worker reads a partition it does not hold from Cassandra once, then
# follows the feed from its end; compaction keeps the newest value of each cell, which is
# all a late reader could use, and deleting what is older than a few days bounds the topic
# by the cells changed recently, not by every minute ever counted. Segments roll hourly:
# the cleaner only touches closed segments, and Kafka's default (7 days) would keep every
# record of a week before either policy applied.
CELLS_RETENTION_MS = 3 * MS_PER_DAY
CELLS_SEGMENT_MS = 3_600_000


def views_timestamp_before_max_ms(settings: Settings) -> int:
    """How far behind the broker's clock a views record's timestamp may be: the restatement
    horizon plus one day, (days + 1) * 86,400,000 ms (Kafka's default is unbounded). The
    nightly run restates promoted days up to ``settings.restatement_days`` (N) back; a record
    stamped in an older day would be taken in and never counted, so the broker refuses it
    (INVALID_TIMESTAMP, nothing written). The extra day is the margin for the time of day:
    a record arriving on UTC day A stamped at 00:00 of day A - N, the oldest day restated,
    passes at any hour of A. The price of a bound in milliseconds: a record accepted at hour
    H of day A may be stamped as early as hour H of day A - N - 1, never earlier, so
    restatement must reach day A - N - 1 for what arrived on day A. With N = 7, at 15:00
    on December 8 a record passes if stamped at or after November 30 15:00."""
    return (settings.restatement_days + 1) * MS_PER_DAY


def max_message_bytes(settings: Settings, topic: str) -> int:
    return DLQ_MAX_MESSAGE_BYTES if topic == settings.dlq_topic else VIEWS_MAX_MESSAGE_BYTES


def enforced_configs(settings: Settings, topic: str) -> dict[str, str]:
    """What a topic of ours must have set, whether created now or found: the record size
    limit, and for a views topic the bounds on record timestamps ahead of the broker and
    behind it. The dead-letter topic takes any views record back, however stamped; the
    cell feed's records are stamped by the counter as it publishes them, and a bound meant
    for producers of views could only make a batch's publish fail."""
    configs = {"max.message.bytes": str(max_message_bytes(settings, topic))}
    if topic not in (settings.dlq_topic, settings.cells_topic):
        configs["message.timestamp.after.max.ms"] = str(VIEWS_TIMESTAMP_AFTER_MAX_MS)
        configs["message.timestamp.before.max.ms"] = str(views_timestamp_before_max_ms(settings))
    return configs


def topic_config(settings: Settings, topic: str) -> dict[str, str]:
    """What a topic of ours is created with: the configured retention (the cell feed: its
    own, compacted), how many replicas must have a write before it is acknowledged, and
    ``enforced_configs``."""
    configs = {"retention.ms": str(settings.topics.topic_retention_ms),
               "min.insync.replicas": str(settings.topics.topic_min_insync_replicas),
               **enforced_configs(settings, topic)}
    if topic == settings.cells_topic:
        configs.update({"cleanup.policy": "compact,delete", "retention.ms": str(CELLS_RETENTION_MS),
                        "segment.ms": str(CELLS_SEGMENT_MS)})
    return configs


def topic_specs(settings: Settings) -> dict[str, int]:
    return {
        settings.views_topic: settings.topics.views_partitions,
        settings.dlq_topic: settings.topics.dlq_partitions,
        settings.cells_topic: settings.topics.cells_partitions,
    }


def require_topics(settings: Settings, names: list[str]) -> None:
    """UserError naming each of the topics that does not exist (the brokers do not create
    topics on first use, and a producer would wait a minute per batch before failing)."""
    from confluent_kafka.admin import AdminClient

    existing = set(AdminClient(client_config(settings)).list_topics(timeout=10).topics)
    missing = [name for name in names if name not in existing]
    if missing:
        raise UserError(f"Kafka has no topic {' and '.join(repr(name) for name in missing)}: `viewcount stack up` "
                        f"(or `viewcount stack init` on servers run elsewhere) creates {'them' if missing[1:] else 'it'}")


def ensure_topics(settings: Settings, specs: dict[str, int] | None = None) -> list[str]:
    """Create missing topics; returns the names created now.

    Topics that exist already get ``enforced_configs`` set (older stacks created them
    without); their other settings are left as an operator may have tuned them.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config(settings))
    existing = set(admin.list_topics(timeout=10).topics)
    specs = specs or topic_specs(settings)
    _ensure_enforced_configs(admin, settings, [name for name in specs if name in existing])
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=settings.topics.topic_replication_factor,
                 config=topic_config(settings, name))
        for name, partitions in specs.items()
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


def delete_topics(settings: Settings, names: list[str]) -> None:
    """Delete topics (their records too); a topic already gone is fine."""
    from confluent_kafka.admin import AdminClient

    if not names:
        return
    admin = AdminClient(client_config(settings))
    for future in admin.delete_topics(list(names), operation_timeout=30).values():
        try:
            future.result()
        except Exception as error:  # noqa: BLE001 - deleted by someone else meanwhile is fine
            if "UNKNOWN_TOPIC_OR_PART" not in str(error):
                raise


def _ensure_enforced_configs(admin, settings: Settings, topics: list[str]) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in enforced_configs(settings, name).items()])
        for name in topics
    ]
    if resources:
        for future in admin.incremental_alter_configs(resources).values():
            future.result()


def partition_offsets(settings: Settings, topic: str, *, committed: bool = True) -> dict[int, tuple[int, int]]:
    """(earliest, end) offset of every partition of a topic. The end is what a reader of
    committed records reaches, the last stable offset (librdkafka's default isolation):
    records of an open transaction and all after them lie beyond it. ``committed=False``
    gives the log's end (the high watermark) instead."""
    from confluent_kafka import Consumer, TopicPartition

    isolation = "read_committed" if committed else "read_uncommitted"
    consumer = Consumer(client_config(settings, **{"group.id": "viewcount-offsets", "isolation.level": isolation}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {partition: watermark_offsets(consumer, TopicPartition(topic, partition))
                for partition in partitions}
    finally:
        consumer.close()


def topic_end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    return {partition: end for partition, (_, end) in partition_offsets(settings, topic).items()}


def dead_letter_reasons(settings: Settings) -> Counter:
    """Every record of the dead-letter topic, counted by its `reason` header."""
    from confluent_kafka import Consumer, TopicPartition

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


# Just after a broker restart, or a topic's creation, its partitions have no leader for a
# few seconds.
LEADER_WAIT_S = 30.0


def watermark_offsets(consumer, partition, *, wait_s: float = LEADER_WAIT_S) -> tuple[int, int]:
    """(earliest, end) offsets of one partition, waiting up to ``wait_s`` while its leader
    moves or another retriable error passes. A broker that cannot be reached at all raises
    at once: the caller says so better than a wait would."""
    from confluent_kafka import KafkaError, KafkaException
    from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

    leader_moving = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                     KafkaError.UNKNOWN_TOPIC_OR_PART)

    def transient(error: BaseException) -> bool:
        if not isinstance(error, KafkaException):
            return False
        return error.args[0].code() in leader_moving or (error.args[0].retriable() and not broker_down(error))

    @retry(retry=retry_if_exception(transient), wait=wait_fixed(0.2), stop=stop_after_delay(wait_s), reraise=True)
    def offsets() -> tuple[int, int]:
        return consumer.get_watermark_offsets(partition, timeout=10)

    return offsets()


def broker_down(error) -> bool:
    """True for a KafkaException that says no broker could be reached at all."""
    from confluent_kafka import KafkaError

    return error.args[0].code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
                                    KafkaError._RESOLVE)
