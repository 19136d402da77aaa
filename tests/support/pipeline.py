"""Helpers for fault tests that keep the counter and the archiver streaming while servers
fail: how far each job got (its log, its micro-batch log, its committed offsets)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.support.speed import (
    consume, expected_speed_counts, logged_batches, speed_counts_of, start_viewcount,
)

RESTARTED = "restarting from the checkpoints"
# The counter's own line per batch, and each job's progress line (the counter's may come late).
BATCH_LINE = re.compile(r"^\[(?:counter|archiver)\] batch (\d+): (?:counted and wrote ([\d,]+) minute cells|"
                        r"([\d,]+) rows in)", re.MULTILINE)


def counter_caught_up(settings, checkpoint: Path, ends: dict[int, int]) -> bool:
    try:
        batches = logged_batches(settings, checkpoint / "counts")
    except Exception:  # noqa: BLE001 - no batch or no Cassandra yet: not caught up
        return False
    done = {}
    for batch in batches:
        for partition, end in batch.end_offsets.items():
            done[partition] = max(done.get(partition, 0), end)
    return all(done.get(partition, 0) >= end for partition, end in ends.items() if end)


def archiver_caught_up(settings, ends: dict[int, int]) -> bool:
    from storage.archive import read_committed_offsets
    from storage.cassandra import connect

    try:
        session = connect(settings)
    except Exception:  # noqa: BLE001 - Cassandra still starting
        return False
    try:
        committed = read_committed_offsets(session, settings.views_topic)
    finally:
        session.cluster.shutdown()
    return all(committed.get(partition, 0) >= end for partition, end in ends.items() if end)


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def batches_read(log: Path) -> int:
    """Batches that read records (an idle query also reports progress, and a stateful one
    runs batches without data to move its watermark)."""
    return len({batch for batch, cells, rows in BATCH_LINE.findall(log_text(log)) if (cells or rows) != "0"})


def wait_until_writing(jobs: dict, logs: dict, before: dict, timeout: float = 180) -> None:
    """Until each job has logged a batch more than `before`."""
    deadline = time.monotonic() + timeout
    while any(batches_read(logs[name]) <= before[name] for name in jobs):
        for name, job in jobs.items():
            assert job.poll() is None, f"{name} exited:\n{log_text(logs[name])[-3000:]}"
        assert time.monotonic() < deadline, f"the jobs wrote no batch in {timeout} s"
        time.sleep(0.5)


def start_jobs(env: dict[str, str], folder: Path, path: str) -> tuple[dict, dict]:
    """The counter (1 s trigger) and the archiver (2 s, into ``path``) as streaming processes,
    checkpoints and logs in ``folder``. Returns (processes, logs) by job name."""
    common = ["--metrics-port", "0", "--max-offsets-per-trigger", "4000"]
    logs = {name: folder / f"{name}.log" for name in ("counter", "archiver")}
    jobs = {"counter": start_viewcount(env, "speed", "--trigger-seconds", "1", *common,
                                       "--checkpoint", str(folder / "counter"), log=logs["counter"]),
            "archiver": start_viewcount(env, "archive", "--trigger-seconds", "2", *common, "--path", path,
                                        "--checkpoint", str(folder / "archiver"), log=logs["archiver"])}
    return jobs, logs


def assert_counted_exactly(settings, checkpoint: Path, produced: int) -> None:
    """The topic holds exactly the ``produced`` records (none lost, none written twice), and
    the speed counts of the counter checkpointed at ``checkpoint`` equal the oracle's (late
    drops aside, each proven by its micro-batch)."""
    from storage.topics import topic_end_offsets

    assert sum(topic_end_offsets(settings, settings.views_topic).values()) == produced
    batches = logged_batches(settings, checkpoint / "counts")
    expected, late_cells = expected_speed_counts(consume(settings, settings.views_topic), batches)
    assert speed_counts_of(settings, expected.keys() | late_cells.keys()) == expected
