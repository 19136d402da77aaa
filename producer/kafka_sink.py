"""Records into Kafka with confluent-kafka (librdkafka): idempotent, acks=all, lz4.

Only failed deliveries are reported back (``delivery.report.only.error``), which keeps the
per-record cost in Python to the ``produce`` call; every failure is kept and raised as a
``UserError`` at the end, never dropped. Broker-side duplicates cannot appear: the
idempotent producer de-duplicates its own retries, so the only duplicates in the topic are
the ones the generator put there.
"""

from __future__ import annotations

from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from tenacity import (RetryCallState, retry, retry_if_exception_type, retry_if_result, stop_after_attempt,
                      stop_after_delay, wait_fixed)

from storage.errors import kafka_unreachable
from storage.kafka_config import QUIET_LOGGER
from storage.topics import broker_down, watermark_offsets
from settings.errors import UserError
from producer.generator import Record

# Shared with bench/produce_throughput.py, which gives Kafka's own ProducerPerformance the
# same settings (names are identical in librdkafka and the Java client).
TUNING = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "compression.type": "lz4",
}
PRODUCER_SETTINGS = {
    **TUNING,
    "partitioner": "murmur2_random",  # the Java client's partitioner: same key, same partition
    "queue.buffering.max.messages": 1_000_000,
    "delivery.report.only.error": True,
    "message.timeout.ms": 120_000,
}
CONNECT_TIMEOUT_S = 10


def _unreachable(kafka: dict) -> UserError:
    return UserError(kafka_unreachable(kafka["bootstrap.servers"]))


def prepare_topic(kafka: dict, topic: str, partitions: int, config: dict[str, str]) -> int:
    """Check Kafka answers and the topic exists (creating it with ``config`` if not, as
    ``viewcount stack up`` creates its topics, not with the broker's defaults); its
    partition count. ``kafka`` is ``storage.kafka_config.client_config(settings)``, as for
    every function here."""
    admin = AdminClient({**kafka, "logger": QUIET_LOGGER})
    try:
        topics = admin.list_topics(timeout=CONNECT_TIMEOUT_S).topics
    except KafkaException as error:
        raise _unreachable(kafka) from error
    if topic not in topics:
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, config=config)])[topic].result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race: fine
                raise UserError(f"cannot create topic {topic!r}: {error.args[0].str()}") from error
            return _partition_count(admin, topic)
        return partitions
    return len(topics[topic].partitions) or _partition_count(admin, topic)


def _partition_count(admin: AdminClient, topic: str) -> int:
    """Partitions of a topic that exists; a topic created a moment ago (here or by someone
    else) may be listed without partitions until its metadata has spread: wait for them."""
    def no_partitions_yet(state: RetryCallState) -> int:
        raise UserError(f"topic {topic!r} has no partitions {CONNECT_TIMEOUT_S} s after its creation")

    @retry(retry=retry_if_result(lambda count: count == 0), wait=wait_fixed(0.2),
           stop=stop_after_delay(CONNECT_TIMEOUT_S), retry_error_callback=no_partitions_yet)
    def listed_partitions() -> int:
        listed = admin.list_topics(topic, timeout=CONNECT_TIMEOUT_S).topics.get(topic)
        return len(listed.partitions) if listed is not None else 0

    return listed_partitions()


def timestamp_window_ms(kafka: dict, topic: str) -> tuple[int, int, int]:
    """How far before and after now the topic accepts record timestamps (KIP-937), and how
    long it keeps records by their timestamps (retention.ms, -1 for ever)."""
    admin = AdminClient({**kafka, "logger": QUIET_LOGGER})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)

    # A request sent to a broker that dies meanwhile is lost with it: asked again, another
    # broker of the cluster answers. Only when none does is Kafka unreachable.
    @retry(retry=retry_if_exception_type((KafkaException, TimeoutError)), stop=stop_after_attempt(3),
           reraise=True)
    def described():
        return admin.describe_configs([resource], request_timeout=CONNECT_TIMEOUT_S)[resource].result(
            timeout=CONNECT_TIMEOUT_S + 1)

    try:
        config = described()
    except (KafkaException, TimeoutError) as error:
        raise _unreachable(kafka) from error
    return (int(config["message.timestamp.before.max.ms"].value),
            int(config["message.timestamp.after.max.ms"].value),
            int(config["retention.ms"].value))


def _end_offset(consumer: Consumer, topic: str, partition: int, kafka: dict) -> int:
    try:  # a topic created a moment ago has no partition leader yet: that is waited for
        return watermark_offsets(consumer, TopicPartition(topic, partition), wait_s=CONNECT_TIMEOUT_S)[1]
    except KafkaException as error:
        if broker_down(error):
            raise _unreachable(kafka) from error
        raise UserError(f"cannot read offsets of {topic!r}: {error.args[0].str()}") from error


def end_offsets(kafka: dict, topic: str, partitions: int) -> dict[int, int]:
    """The next offset of every partition: with a later call, the range a run wrote to."""
    consumer = Consumer({**kafka, "group.id": "viewcount-produce", "enable.auto.commit": False,
                         "logger": QUIET_LOGGER})
    try:
        return {partition: _end_offset(consumer, topic, partition, kafka) for partition in range(partitions)}
    finally:
        consumer.close()


class KafkaSink:
    def __init__(self, kafka: dict, topic: str, settings: dict | None = None) -> None:
        self.topic = topic
        self.bootstrap = kafka["bootstrap.servers"]
        self.failed: list[KafkaError] = []
        self.client_errors: list[KafkaError] = []
        self.produced = 0
        self._producer = Producer({
            **PRODUCER_SETTINGS, **(settings or {}), **kafka,
            "on_delivery": self._on_delivery, "error_cb": self.client_errors.append, "logger": QUIET_LOGGER,
        })

    def _on_delivery(self, error: KafkaError | None, message) -> None:
        if error is not None:
            self.failed.append(error)

    @property
    def in_flight(self) -> int:
        return len(self._producer)

    @property
    def delivered(self) -> int:
        return self.produced - self.in_flight - len(self.failed)

    def send(self, records: list[Record]) -> None:
        produce, poll, topic = self._producer.produce, self._producer.poll, self.topic
        for record in records:
            while True:
                try:
                    produce(topic, record.value, record.key, timestamp=record.timestamp_ms)
                    break
                except BufferError:  # librdkafka's queue is full: let it drain
                    poll(0.05)
        self.produced += len(records)
        poll(0)
        self._raise_on_failure()

    def flush(self, on_progress: Callable[[], None] = lambda: None) -> None:
        """Wait until every record is acknowledged (or has failed) and raise on any failure."""
        while self._producer.flush(0.25) > 0:
            on_progress()
            self._raise_on_failure()
        self._raise_on_failure()

    def _raise_on_failure(self) -> None:
        fatal = [error for error in self.client_errors if error.fatal()]
        if fatal or self.failed:
            self._producer.purge(in_queue=True, in_flight=False)  # stop sending what is queued
        if fatal:
            raise UserError(f"the Kafka producer failed: {fatal[0].str()}")
        if self.failed:
            hint = ""
            if any(e.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT)
                   for e in self.client_errors):
                hint = " (is Kafka up? `viewcount stack status`)"
            raise UserError(f"{len(self.failed)} record(s) not delivered to {self.topic!r}: "
                            f"{self.failed[0].str()}{hint}")

