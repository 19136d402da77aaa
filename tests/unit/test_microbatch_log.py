"""What a counter batch consumed, read from its checkpoint as Spark writes it."""

from __future__ import annotations

import json

from speed_layer.microbatch_log import read_batch_offsets

TOPIC = "views"
METADATA = {"batchWatermarkMs": 0, "batchTimestampMs": 1_796_203_089_464, "conf": {}}


def _checkpoint(tmp_path, initial: dict[str, int] | None, batches: list[dict[str, int]]) -> str:
    """A checkpoint laid out as Spark's Kafka source and offset log leave it."""
    if initial is not None:
        (tmp_path / "sources" / "0").mkdir(parents=True)
        (tmp_path / "sources" / "0" / "0").write_bytes(b"\0v1\n" + json.dumps({TOPIC: initial}).encode())
    (tmp_path / "offsets").mkdir()
    for batch_id, ends in enumerate(batches):
        metadata = {**METADATA, "batchWatermarkMs": 1000 * batch_id}
        (tmp_path / "offsets" / str(batch_id)).write_text(f"v1\n{json.dumps(metadata)}\n{json.dumps({TOPIC: ends})}")
    return f"file://{tmp_path}"


def test_batch_0_of_a_counter_started_at_latest_starts_where_the_source_started(spark, tmp_path):
    """Started with ``--starting-offsets latest`` on a topic holding 500 and 700 records:
    its first batch read from 500 and 700, not from the earliest offsets."""
    checkpoint = _checkpoint(tmp_path, {"0": 500, "1": 700}, [{"0": 520, "1": 700}, {"0": 530, "1": 710}])

    first = read_batch_offsets(spark, checkpoint, 0, TOPIC, earliest_offsets={0: 0, 1: 0})
    second = read_batch_offsets(spark, checkpoint, 1, TOPIC, earliest_offsets={0: 0, 1: 0})

    assert (first.start_offsets, first.end_offsets) == ({0: 500, 1: 700}, {0: 520, 1: 700})
    assert (second.start_offsets, second.end_offsets) == ({0: 520, 1: 700}, {0: 530, 1: 710})
    assert (second.late_watermark_ms, second.eviction_watermark_ms) == (0, 1000)


def test_a_partition_added_later_starts_at_its_earliest_offset(spark, tmp_path):
    checkpoint = _checkpoint(tmp_path, {"0": 500}, [{"0": 520}, {"0": 530, "1": 40}])

    second = read_batch_offsets(spark, checkpoint, 1, TOPIC, earliest_offsets={0: 0, 1: 30})

    assert second.start_offsets == {0: 520, 1: 30}


def test_a_batch_writes_with_its_planning_time_kept_above_the_batch_before():
    from speed_layer.microbatch_log import next_write_timestamp

    assert next_write_timestamp(1_796_203_089_464, None) == 1_796_203_089_464_000
    assert next_write_timestamp(1_796_203_089_464, 1_796_203_080_000_000) == 1_796_203_089_464_000
    # The driver's clock went back (a new host): still after the batch before.
    assert next_write_timestamp(1_796_203_000_000, 1_796_203_089_464_000) == 1_796_203_089_464_001
