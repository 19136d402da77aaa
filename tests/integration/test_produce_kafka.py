"""``viewcount produce`` against the real Kafka: what lands in the topic is what the oracle says."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import date

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.partitioner.default import murmur2

from viewcount import cli
from oracle import counts as oracle
from producer.arrivals import DayArrivals
from producer.generator import Mix, ViewGenerator

pytestmark = pytest.mark.integration
PARTITIONS = 6


@pytest.fixture(scope="module")
def bootstrap(stack) -> str:
    return stack.kafka_bootstrap


def fresh_topic(bootstrap: str, config: dict[str, str] | None = None):
    """A topic keeping its records for ever (past days' timestamps), unless ``config`` says otherwise."""
    name = f"test-produce-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"retention.ms": "-1", **(config or {})}
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, config=config)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


@pytest.fixture
def topic(bootstrap):
    yield from fresh_topic(bootstrap)


@pytest.fixture
def refusing_topic(bootstrap):
    """A topic that refuses every record whose timestamp is before the broker's clock."""
    yield from fresh_topic(bootstrap, {"message.timestamp.before.max.ms": "0"})


def consume_all(bootstrap: str, topic: str, end_offsets: dict[str, int]) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                        "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, int(p), 0) for p in end_offsets])
    messages, expected = [], sum(end_offsets.values())
    deadline = time.monotonic() + 60
    while len(messages) < expected and time.monotonic() < deadline:
        for message in consumer.consume(10_000, timeout=1):
            assert message.error() is None, message.error()
            messages.append(message)
    consumer.close()
    return messages


def produce(argv: list[str]) -> int:
    return cli.main(["produce", *argv])


def test_a_day_of_events_lands_exactly_as_the_oracle_says(bootstrap, topic, tmp_path):
    options = ["--events", "30000", "--seed", "42", "--day", "2026-11-20", "--duplicates", "0.05",
               "--late", "0.05", "--malformed", "0.03", "--videos", "500"]
    assert produce([*options, "--topic", topic, "--oracle", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["offsets_before"] == {str(p): 0 for p in range(PARTITIONS)}

    messages = consume_all(bootstrap, topic, summary["offsets_after"])

    assert len(messages) == summary["records_sent"] == 30_000
    mix = Mix(videos=500, zipf=1.1, duplicates=0.05, late=0.05, malformed=0.03)
    generator = ViewGenerator(mix, 42, DayArrivals(date(2026, 11, 20), 30_000, 42))
    expected = [record for chunk in iter(lambda: generator.chunk(5_000), []) for record in chunk]
    received = Counter((m.key(), m.value(), m.timestamp()) for m in messages)
    assert received == Counter((r.key, r.value, (TIMESTAMP_CREATE_TIME, r.timestamp_ms)) for r in expected)

    for message in messages:
        if message.key() is not None:  # partitioned like the Java client: murmur2 of the key
            assert message.partition() == (murmur2(message.key()) & 0x7FFFFFFF) % PARTITIONS

    counter = oracle.ViewCounter().add_all((m.value(), m.timestamp()[1]) for m in messages)
    assert counter.views() == oracle.read_counts(tmp_path / "counts.parquet")
    assert dict(counter.invalid) == {reason: n for reason, n in summary["invalid"].items() if n}
    assert len(summary["invalid"]) == 12 and all(summary["invalid"].values())


def test_without_a_day_events_arrive_now(bootstrap, topic, tmp_path):
    started_ms = time.time_ns() // 1_000_000
    assert produce(["--events", "3000", "--seed", "1", "--topic", topic, "--oracle", str(tmp_path)]) == 0
    finished_ms = time.time_ns() // 1_000_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    written = sum(summary["offsets_after"].values()) - sum(summary["offsets_before"].values())
    assert written == 3000, summary["offsets_after"]

    messages = consume_all(bootstrap, topic, summary["offsets_after"])

    assert len(messages) == 3000
    assert all(started_ms <= m.timestamp()[1] <= finished_ms for m in messages)
    counter = oracle.ViewCounter().add_all((m.value(), m.timestamp()[1]) for m in messages)
    assert counter.views() == oracle.read_counts(tmp_path / "counts.parquet")


def test_records_kafka_refuses_fail_the_run_loudly(refusing_topic, tmp_path, capsys):
    code = produce(["--events", "2000", "--topic", refusing_topic, "--oracle", str(tmp_path / "oracle")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"record(s) not delivered to '{refusing_topic}'" in err and "Traceback" not in err
    assert not (tmp_path / "oracle").exists()


def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until its answer is in
    config = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in config.items()}


def test_a_topic_produce_creates_is_configured_like_the_stacks_own(bootstrap, tmp_path, capsys):
    """Not with the broker's defaults: a week's retention would delete a replayed past day
    at once, and an hour's timestamp allowance would let a fast clock through."""
    name = f"test-produce-{uuid.uuid4().hex[:12]}"
    try:
        assert produce(["--events", "50", "--topic", name, "--partitions", "2",
                        "--oracle", str(tmp_path / "oracle")]) == 0
        config = _topic_config(bootstrap, name)
        assert config["retention.ms"] == "-1"
        assert config["message.timestamp.after.max.ms"] == "300000"
    finally:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.delete_topics([name])[name].result(timeout=30)


def test_a_day_the_topic_would_delete_at_once_is_refused_before_sending(bootstrap, tmp_path, capsys):
    topics = fresh_topic(bootstrap, {"retention.ms": str(3 * 86_400_000)})
    topic_name = next(topics)
    try:
        day = date.fromordinal(date.today().toordinal() - 5)
        code = produce(["--events", "100", "--day", day.isoformat(), "--topic", topic_name,
                        "--oracle", str(tmp_path / "oracle")])
        err = capsys.readouterr().err
        assert code == 2
        assert f"--day {day} is too far back: topic '{topic_name}' deletes records more than 3 days old" in err
        assert "Traceback" not in err and not (tmp_path / "oracle").exists()
        yesterday = date.fromordinal(date.today().toordinal() - 1)
        assert produce(["--events", "100", "--day", yesterday.isoformat(), "--topic", topic_name,
                        "--oracle", str(tmp_path / "oracle")]) == 0
    finally:
        next(topics, None)  # deletes it
