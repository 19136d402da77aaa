"""The speed-layer counter against the real Kafka and Cassandra.

The counts must equal the oracle's, except for events the micro-batch log proves were
behind the watermark of the batch that read them; those, and only those, are missing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter

import pytest

from tests.support.speed import (
    consume, expected_speed_counts, isolated, logged_batches, speed_counts_of, viewcount,
)

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def counted(stack, tmp_path_factory):
    """A day with duplicates, late and malformed records, counted in many small batches."""
    with isolated(stack, "test-speed") as (settings, env):
        yield _count_a_day(settings, env, tmp_path_factory.mktemp("speed"))


def _count_a_day(settings, env, folder) -> dict:
    viewcount(env, "produce", "--events", "40000", "--seed", "5", "--day", DAY.isoformat(),
              "--videos", "300", "--late", "0.05", "--duplicates", "0.05", "--malformed", "0.02",
              "--oracle", str(folder / "oracle"))
    # Small batches, so the watermark moves between them and some late events are dropped.
    run = viewcount(env, "speed", "--available-now", "--max-offsets-per-trigger", "4000",
                    "--metrics-port", "0", "--checkpoint", str(folder / "checkpoint"))
    summary = json.loads((folder / "oracle" / "summary.json").read_text())
    return {"settings": settings, "folder": folder, "stderr": run.stderr, "summary": summary}


def test_counts_equal_the_oracle_except_events_the_log_proves_late(counted):
    settings = counted["settings"]
    batches = logged_batches(settings, counted["folder"] / "checkpoint" / "counts")
    assert len(batches) > 5, "the run must span several micro-batches"
    expected, late_cells = expected_speed_counts(consume(settings, settings.views_topic), batches)
    actual = speed_counts_of(settings, expected.keys() | late_cells.keys())

    assert actual == expected
    assert sum(late_cells.values()) > 0, "the test must exercise beyond-watermark lateness"
    # Spark's own count of rows it dropped behind the watermark agrees with the proof.
    assert sum(batch.late_dropped or 0 for batch in batches) == sum(late_cells.values())


def test_every_invalid_record_is_in_the_dead_letter_topic_with_its_reason(counted):
    settings = counted["settings"]
    dead = consume(settings, settings.dlq_topic)
    reasons = Counter(dict(m.headers())["reason"].decode() for m in dead)
    assert reasons == {reason: n for reason, n in counted["summary"]["invalid"].items() if n}
    source = {(m.partition(), m.offset()): m for m in consume(settings, settings.views_topic)}
    for message in dead:
        headers = dict(message.headers())
        original = source[(int(headers["source_partition"]), int(headers["source_offset"]))]
        assert (message.key(), message.value()) == (original.key(), original.value())


def test_batch_log_accounts_for_every_record_and_prints_progress(counted):
    batches = logged_batches(counted["settings"], counted["folder"] / "checkpoint" / "counts")
    assert sum(batch.rows_in or 0 for batch in batches) == counted["summary"]["records_sent"]
    invalid = Counter()
    for batch in batches:
        invalid.update(batch.invalid or {})
    assert +invalid == {k: v for k, v in counted["summary"]["invalid"].items() if v}
    assert "[counter] batch 0:" in counted["stderr"]


def test_each_cell_carries_the_write_timestamp_of_the_batch_that_last_wrote_it(counted):
    """Cells are written USING TIMESTAMP of their batch, strictly increasing with the batch
    order, so no leftover writer of an earlier batch can overwrite a later count."""
    from storage.cassandra import connect
    from storage.minute_counts import read_write_timestamps

    settings = counted["settings"]
    batches = sorted(logged_batches(settings, counted["folder"] / "checkpoint" / "counts"),
                     key=lambda batch: batch.batch_id)
    stamps = [batch.write_timestamp for batch in batches]
    assert None not in stamps and all(later > earlier for earlier, later in zip(stamps, stamps[1:]))
    planned = [round(batch.batch_time.replace(tzinfo=dt.timezone.utc).timestamp() * 1000) * 1000 for batch in batches]
    assert all(stamp >= at for stamp, at in zip(stamps, planned))
    session = connect(settings)
    try:
        written = {stamp for _, stamp in read_write_timestamps(session).values()}
    finally:
        session.cluster.shutdown()
    assert written and written <= set(stamps)


def test_the_cell_feed_holds_every_written_cell_with_its_write_timestamp(counted):
    """Every batch publishes the cells it wrote, after writing them: the feed read from the
    beginning, the newest record of each cell kept, is the speed table, cell by cell and
    write timestamp by write timestamp; and the last record of a cell in its partition is
    that newest one, so compaction keeps the right one."""
    from storage.cassandra import connect
    from storage.cell_feed import decode
    from storage.minute_counts import read_write_timestamps

    settings = counted["settings"]
    records = consume(settings, settings.cells_topic)
    newest, last_in_partition, per_stamp = {}, {}, Counter()
    for message in sorted(records, key=lambda m: (m.partition(), m.offset())):
        cell = decode(message.key(), message.value())
        key = (cell.video_id, cell.minute)
        per_stamp[cell.write_timestamp] += 1
        last_in_partition[key] = cell
        if key not in newest or cell.write_timestamp > newest[key].write_timestamp:
            newest[key] = cell
    session = connect(settings)
    try:
        table = read_write_timestamps(session)
    finally:
        session.cluster.shutdown()

    assert table, "the counter must have written cells"
    assert {key: (cell.views, cell.write_timestamp) for key, cell in newest.items()} == table
    assert last_in_partition == newest
    # Each batch published exactly the cells it wrote, and said so.
    batches = logged_batches(settings, counted["folder"] / "checkpoint" / "counts")
    assert per_stamp == {batch.write_timestamp: batch.rows_written for batch in batches if batch.rows_written}
    said = [int(n.replace(",", "")) for n in
            re.findall(rf"published ([\d,]+) to {re.escape(settings.cells_topic)} in", counted["stderr"])]
    assert sum(said) == len(records) and len(said) == len(batches)
