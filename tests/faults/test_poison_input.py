"""Poison input: hostile records of every kind in tests/support/hostile.py among valid
views. Every hostile one reaches the dead-letter topic with its reason and its original
bytes, the valid views around them are counted exactly, and the counter does not crash.
(That the archiver keeps every record byte for byte is proven by the crash and outage
tests.) A record over the topic's size limit, or stamped too far ahead of the broker or
behind it, is refused at produce time and leaves nothing behind.

A few thousand records hold every hostile kind and every reason code (the first test
checks that they do): 3,000 in CI, 100,000 under `make soak` (tests/faults/scale.py).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections import Counter

import pytest

from tests.support.hostile import HostileFactory, hostile_records
from tests.faults.scale import POISON_RECORDS as HOSTILE
from tests.support.speed import (
    consume, expected_speed_counts, isolated, logged_batches, speed_counts_of, viewcount,
)

# The module fixture (production, kills, drains) runs inside the first test's time limit.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

DAY = dt.date(2026, 11, 21)
VIDEOS = [f"poison-{n:03d}" for n in range(40)]
# A valid view after every few hostile records: poison before and after each one.
VALID_EVERY = 3
# Records leave room for the key and the batch framing under the topic's limit.
FRAMING_ROOM = 2_048


def _valid_view(rng: random.Random, kafka_ms: int) -> bytes:
    import json

    return json.dumps({"event_id": str(uuid.UUID(int=rng.getrandbits(128))), "video_id": rng.choice(VIDEOS),
                       "event_time": kafka_ms - rng.randint(0, 20_000), "user_id": "u"}).encode()


def _producer(settings, topic: str):
    from storage.kafka_config import client_config
    from storage.topics import DLQ_MAX_MESSAGE_BYTES
    from producer.kafka_sink import KafkaSink

    # The client's own size check is lifted so that the broker is the judge of size.
    return KafkaSink(client_config(settings), topic, {"message.max.bytes": DLQ_MAX_MESSAGE_BYTES})


@pytest.fixture(scope="module")
def poisoned(stack, tmp_path_factory):
    """Hostile and valid records interleaved in one topic, then the counter over them to
    the end."""
    from storage.topics import VIEWS_MAX_MESSAGE_BYTES
    from producer.generator import Record

    folder = tmp_path_factory.mktemp("poison")
    with isolated(stack, "test-poison") as (settings, env):
        start_ms = int(dt.datetime.combine(DAY, dt.time(10), dt.timezone.utc).timestamp() * 1000)
        hostile = hostile_records(HOSTILE, seed=61, videos=VIDEOS,
                                  size_limit=VIEWS_MAX_MESSAGE_BYTES - FRAMING_ROOM,
                                  first_kafka_ms=start_ms, spacing_ms=10)
        rng = random.Random(62)
        records, tags = [], {}
        for index, (kafka_ms, record) in enumerate(hostile):
            records.append(Record(record.key, record.value, kafka_ms, record.kind, -1, 0, False))
            tags[len(records) - 1] = record
            if index % VALID_EVERY == 0:
                records.append(Record(None, _valid_view(rng, kafka_ms + 5), kafka_ms + 5, "valid", -1, 0, False))
        sink = _producer(settings, settings.views_topic)
        began = time.monotonic()
        for chunk in range(0, len(records), 5_000):
            sink.send(records[chunk: chunk + 5_000])
        sink.flush()
        produced_s = time.monotonic() - began

        # Several micro-batches whatever the size: poison in the first, the middle and the last.
        batch_size = max(1_000, len(records) // 4)
        common = ["--available-now", "--metrics-port", "0", "--max-offsets-per-trigger", str(batch_size)]
        began = time.monotonic()
        viewcount(env, "speed", *common, "--checkpoint", str(folder / "counter"), timeout=1200)
        counted_s = time.monotonic() - began
        print(f"\npoison: {len(records):,} records produced in {produced_s:.1f} s, "
              f"counted in {counted_s:.1f} s")
        yield {"settings": settings, "records": records, "tags": tags, "folder": folder}


def test_every_hostile_record_is_tagged_as_the_oracle_classifies_it(poisoned):
    from counting import reasons as R
    from oracle import counts as oracle

    kinds = Counter()
    for index, hostile in poisoned["tags"].items():
        record = poisoned["records"][index]
        reason, _ = oracle.classify(record.value, record.timestamp_ms)
        assert reason == hostile.reason, (hostile.kind, reason, hostile.reason, (record.value or b"")[:200])
        kinds[hostile.kind] += 1
    assert sum(kinds.values()) == HOSTILE
    every_kind = HostileFactory(random.Random(0), VIDEOS, size_limit=0).kinds
    assert set(kinds) == set(every_kind), f"kinds missing: {set(every_kind) - set(kinds)}"
    reasons = Counter(hostile.reason for hostile in poisoned["tags"].values())
    assert set(reasons) == {*R.REASONS, None}, f"reasons missing: {set(R.REASONS) - set(reasons)}"
    print(f"\n{HOSTILE:,} hostile records: kinds {dict(kinds)}; reasons {dict(reasons)}")


def test_every_invalid_record_is_dead_lettered_once_with_reason_and_original_bytes(poisoned):
    from oracle import counts as oracle

    settings = poisoned["settings"]
    sent = consume(settings, settings.views_topic)
    assert len(sent) == len(poisoned["records"])
    invalid = {}
    for message in sent:
        reason, _ = oracle.classify(message.value(), message.timestamp()[1])
        if reason is not None:
            invalid[(message.partition(), message.offset())] = (reason, message.key(), message.value())
    assert len(invalid) == sum(1 for hostile in poisoned["tags"].values() if hostile.reason)

    dead = {}
    for message in consume(settings, settings.dlq_topic):
        headers = dict(message.headers())
        origin = (int(headers["source_partition"]), int(headers["source_offset"]))
        assert origin not in dead, f"record {origin} dead-lettered twice"
        assert headers["source_topic"].decode() == settings.views_topic
        dead[origin] = (headers["reason"].decode(), message.key(), message.value())
    assert dead.keys() == invalid.keys()
    wrong = [(origin, dead[origin][0], expected[0]) for origin, expected in invalid.items()
             if dead[origin] != expected]
    assert not wrong, f"{len(wrong)} dead letters differ from their record, e.g. {wrong[:5]}"
    print("dead letters by reason:", dict(Counter(reason for reason, _, _ in dead.values())))


def test_valid_views_around_the_poison_are_counted_exactly(poisoned):
    settings = poisoned["settings"]
    batches = logged_batches(settings, poisoned["folder"] / "counter" / "counts")
    assert len(batches) >= 3, "the run must span several micro-batches"
    expected, late_cells = expected_speed_counts(consume(settings, settings.views_topic), batches)
    assert sum(expected.values()) >= HOSTILE // VALID_EVERY
    actual = speed_counts_of(settings, expected.keys() | late_cells.keys())
    assert actual == expected


def test_a_record_over_the_topic_limit_is_refused_at_produce_time_and_leaves_nothing(stack):
    from storage.topics import VIEWS_MAX_MESSAGE_BYTES
    from settings.errors import UserError
    from storage.topics import topic_end_offsets
    from producer.generator import Record

    with isolated(stack, "test-oversize") as (settings, _):
        now = int(time.time() * 1000)
        rng = random.Random(63)
        huge = rng.randbytes(VIEWS_MAX_MESSAGE_BYTES + 1_000)  # incompressible
        sink = _producer(settings, settings.views_topic)
        with pytest.raises(UserError) as refused:
            sink.send([Record(b"v", huge, now, "too_large", -1, 0, False)])
            sink.flush()
        message = str(refused.value)
        assert "not delivered" in message and "too large" in message.lower(), message
        assert sum(topic_end_offsets(settings, settings.views_topic).values()) == 0

        view = _valid_view(rng, now)
        after = _producer(settings, settings.views_topic)
        after.send([Record(b"v", view, now, "valid", -1, 0, False)])
        after.flush()
        assert [m.value() for m in consume(settings, settings.views_topic)] == [view]


def test_a_record_stamped_past_the_rules_allowance_ahead_is_refused_and_leaves_nothing(stack):
    """A producer whose clock runs fast: its record timestamp (CreateTime) must not pass the
    5-minute future rule and move the speed layer's watermark ahead of real time. The views
    topic refuses it at produce time; within the allowance a record is written."""
    from counting.reasons import MAX_FUTURE_SECONDS
    from storage.kafka_config import client_config
    from storage.topics import ensure_topics
    from settings.errors import UserError
    from storage.topics import topic_end_offsets
    from producer.generator import Record
    from producer.kafka_sink import timestamp_window_ms

    with isolated(stack, "test-fast-clock") as (settings, _):
        rng = random.Random(64)
        fast = int(time.time() * 1000) + 59 * 60_000  # a clock 59 minutes fast
        sink = _producer(settings, settings.views_topic)
        with pytest.raises(UserError) as refused:
            sink.send([Record(b"v", _valid_view(rng, fast), fast, "valid", -1, 0, False)])
            sink.flush()
        message = str(refused.value)
        assert "not delivered" in message and "timestamp" in message.lower(), message
        assert sum(topic_end_offsets(settings, settings.views_topic).values()) == 0

        ahead = int(time.time() * 1000) + (MAX_FUTURE_SECONDS - 60) * 1000  # within the allowance
        view = _valid_view(rng, ahead)
        within = _producer(settings, settings.views_topic)
        within.send([Record(b"v", view, ahead, "valid", -1, 0, False)])
        within.flush()
        assert [m.value() for m in consume(settings, settings.views_topic)] == [view]
        # A topic created before the bound existed gets it when the stack ensures its topics.
        _set_topic_config(settings, settings.views_topic, "message.timestamp.after.max.ms", "3600000")
        ensure_topics(settings, {settings.views_topic: 6})
        assert timestamp_window_ms(client_config(settings), settings.views_topic)[1] == MAX_FUTURE_SECONDS * 1000


def test_a_record_stamped_before_the_restatement_horizon_is_refused_and_leaves_nothing(stack):
    """A producer whose clock runs behind, or a replay of a day no longer restated: its
    records would land in a closed day that nothing counts again. With a horizon of 7 days
    the views topic refuses a record stamped 9 days back at produce time, and takes one
    stamped 2 days back."""

    from storage.kafka_config import client_config
    from storage.topics import MS_PER_DAY, ensure_topics
    from settings.errors import UserError
    from storage.topics import topic_end_offsets
    from producer.generator import Record
    from producer.kafka_sink import timestamp_window_ms

    week = stack.replaced(topics=stack.topics.model_copy(update={"restatement_days": 7}))
    with isolated(week, "test-slow-clock") as (settings, _):
        assert timestamp_window_ms(client_config(settings), settings.views_topic)[0] == 8 * MS_PER_DAY
        rng = random.Random(65)
        too_old = int(time.time() * 1000) - 9 * MS_PER_DAY
        sink = _producer(settings, settings.views_topic)
        with pytest.raises(UserError) as refused:
            sink.send([Record(b"v", _valid_view(rng, too_old), too_old, "valid", -1, 0, False)])
            sink.flush()
        message = str(refused.value)
        assert "not delivered" in message and "timestamp" in message.lower(), message
        assert sum(topic_end_offsets(settings, settings.views_topic).values()) == 0

        recent = int(time.time() * 1000) - 2 * MS_PER_DAY
        view = _valid_view(rng, recent)
        within = _producer(settings, settings.views_topic)
        within.send([Record(b"v", view, recent, "valid", -1, 0, False)])
        within.flush()
        assert [m.value() for m in consume(settings, settings.views_topic)] == [view]
        # A topic created before the bound existed (Kafka's default: unbounded) gets it when
        # the stack ensures its topics; the dead-letter topic takes any record back.
        _set_topic_config(settings, settings.views_topic, "message.timestamp.before.max.ms",
                          str(2**63 - 1))
        ensure_topics(settings, {settings.views_topic: 6, settings.dlq_topic: 2})
        assert timestamp_window_ms(client_config(settings), settings.views_topic)[0] == 8 * MS_PER_DAY
        assert timestamp_window_ms(client_config(settings), settings.dlq_topic)[0] == 2**63 - 1


def _set_topic_config(settings, topic: str, key: str, value: str) -> None:
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    from storage.kafka_config import client_config

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    admin = AdminClient(client_config(settings))  # kept until its answer is in
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
