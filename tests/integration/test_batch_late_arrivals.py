"""A record stamped into the hours of a day whose batch version is already final (a
producer whose clock lags), against the real Kafka, archiver, batch layer and Cassandra:
the next batch of that day names it and refuses, never takes it in silently.

The record follows the day's last one in its partition, so the offsets alone run on
unbroken: only the comparison with the final version's input shows it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.integration.speed_support import isolated, viewcount
from tests.integration.test_reconcile_support import run_cli, send, view

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 8)
HOUR_9_MS = int(dt.datetime(2026, 11, 8, 9, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def late(stack, tmp_path_factory):
    from storage.batch_results import read_promotion, read_versions
    from storage.cassandra import connect

    folder = tmp_path_factory.mktemp("late-arrivals")
    with isolated(stack, "test-late") as (settings, env):
        archive = ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "archive"))
        output = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}/batch"
        send(settings, 0, [("v1", view("v1", HOUR_9_MS + n * 1000), HOUR_9_MS + n * 1000 + 500) for n in range(50)])
        viewcount(env, *archive)
        first = run_cli(env, "batch", "--date", str(D), "--output", output)
        viewcount(env, "promote", "--date", str(D), "--version", "1", "--unreconciled")
        stamped_ms = HOUR_9_MS + 3_600_000 + 1_800_000  # D 10:30, sent now
        send(settings, 0, [("v1", view("v1", stamped_ms - 1000), stamped_ms)])
        viewcount(env, *archive)
        refused = run_cli(env, "batch", "--date", str(D), "--output", output)
        accepted = run_cli(env, "batch", "--date", str(D), "--output", output, "--allow-gaps")
        session = connect(settings)
        try:
            yield {"first": first, "refused": refused, "accepted": accepted,
                   "versions": {v.version: v for v in read_versions(session, D)},
                   "promotion": read_promotion(session, D)}
        finally:
            session.cluster.shutdown()


def test_the_first_version_counts_the_day(late):
    assert late["first"].returncode == 0, late["first"].stderr[-3000:]
    assert late["versions"][1].total_views == 50 and late["versions"][1].gaps == ()


def test_a_record_archived_into_a_final_days_hours_is_named_and_refused(late):
    run = late["refused"]
    assert run.returncode == 4 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "partition 0: 1 records arrived in the window's hours after final version 1 read them" in last
    assert "--allow-gaps" in last


def test_counting_it_is_an_explicit_recorded_exception_and_the_final_day_stays(late):
    run = late["accepted"]
    assert run.returncode == 0, run.stderr[-3000:]
    version = late["versions"][2]
    assert version.total_views == 51 and version.allow_gaps
    assert [gap for gap in version.gaps if "after final version 1" in gap] == [
        "partition 0: 1 records arrived in the window's hours after final version 1 read them "
        "(offsets 50-50; a producer clock behind?)"]
    assert late["promotion"].version == 1
