"""kill -9 the speed-layer jobs at random points while events arrive: nothing is lost,
nothing is counted or archived twice."""

from __future__ import annotations

import datetime as dt
import random
import time

import pytest

from tests.integration.speed_support import (
    consume, expected_speed_counts, isolated, kill_hard, logged_batches, speed_counts_of,
    start_viewcount, viewcount,
)
from tests.integration.test_speed_archiver import assert_archive_matches_topic

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 19)
KILLS = 3


def _produce_in_background(env, tmp_path, seed: int):
    return start_viewcount(env, "produce", "--events", "60000", "--rate", "3000", "--seed", str(seed),
                           "--day", DAY.isoformat(), "--videos", "400", "--late", "0.03",
                           "--oracle", str(tmp_path / "oracle"), log=tmp_path / "produce.log")


def _crash_repeatedly(env, tmp_path, job_args: list[str], seed: int) -> None:
    """Start the job, kill -9 it after a random while, KILLS times; then drain to the end."""
    chance = random.Random(seed)
    for _ in range(KILLS):
        job = start_viewcount(env, *job_args, log=tmp_path / "job.log")
        time.sleep(chance.uniform(12, 30))  # Spark needs ~10 s to start; then mid-batch
        assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
        kill_hard(job)


@pytest.fixture
def crash_site(stack):
    with isolated(stack, "test-crash") as site:
        yield site


def test_counter_killed_repeatedly_still_counts_exactly(crash_site, tmp_path):
    settings, env = crash_site
    producer = _produce_in_background(env, tmp_path, seed=21)
    common = ["--metrics-port", "0", "--max-offsets-per-trigger", "3000",
              "--checkpoint", str(tmp_path / "checkpoint")]
    _crash_repeatedly(env, tmp_path, ["speed", "--trigger-seconds", "1", *common], seed=21)
    assert producer.wait(timeout=300) == 0
    viewcount(env, "speed", "--available-now", *common)

    batches = logged_batches(settings, tmp_path / "checkpoint" / "counts")
    expected, late_cells = expected_speed_counts(consume(settings, settings.views_topic), batches)
    actual = speed_counts_of(settings, expected.keys() | late_cells.keys())
    assert actual == expected


def test_archiver_killed_repeatedly_still_archives_every_offset_once(crash_site, spark, tmp_path):
    settings, env = crash_site
    path = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}"
    producer = _produce_in_background(env, tmp_path, seed=22)
    common = ["--metrics-port", "0", "--max-offsets-per-trigger", "5000", "--path", path,
              "--checkpoint", str(tmp_path / "checkpoint")]
    _crash_repeatedly(env, tmp_path, ["archive", "--trigger-seconds", "2", *common], seed=22)
    assert producer.wait(timeout=300) == 0
    viewcount(env, "archive", "--available-now", *common)
    assert_archive_matches_topic(settings, spark, path)
