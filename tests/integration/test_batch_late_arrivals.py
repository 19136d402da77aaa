"""A record stamped into the hours of a day whose batch version is already final (a
producer whose clock lags), against the real Kafka, archiver, batch layer and Cassandra:
the next batch of that day counts it into a new version and records, per video, what it
changes against the final one; the final version keeps serving until a promotion, which
writes a restatement record (views and money delta, why, by whom) before the switch.

The record follows the day's last one in its partition, so the offsets alone run on
unbroken: only the comparison with the final version's input shows it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.support.speed import isolated, viewcount
from tests.support.batch import run_cli
from tests.support.reconcile import send, view

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 8)
HOUR_9_MS = int(dt.datetime(2026, 11, 8, 9, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def late(stack, tmp_path_factory):
    from batch_layer.restatement import late_lines
    from storage.batch_results import read_promotion, read_versions
    from storage.cassandra import connect
    from storage.restatements import read_restatements, read_version_deltas

    folder = tmp_path_factory.mktemp("late-arrivals")
    with isolated(stack, "test-late") as (settings, env):
        archive = ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "archive"))
        output = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}/batch"
        (folder / "catalog.csv").write_text("video_id,billable,rate_per_1000,currency,title\nv1,true,2.5,EUR,One\n")
        viewcount(env, "catalog", "load", str(folder / "catalog.csv"))
        send(settings, 0, [("v1", view("v1", HOUR_9_MS + n * 1000), HOUR_9_MS + n * 1000 + 500) for n in range(50)])
        viewcount(env, *archive)
        first = run_cli(env, "batch", "--date", str(D), "--output", output)
        viewcount(env, "promote", "--date", str(D), "--version", "1", "--unreconciled")
        stamped_ms = HOUR_9_MS + 3_600_000 + 1_800_000  # D 10:30, sent now
        send(settings, 0, [("v1", view("v1", stamped_ms - 1000), stamped_ms)])
        viewcount(env, *archive)
        session = connect(settings)
        try:
            final = next(v for v in read_versions(session, D) if v.version == 1)
            found = late_lines(session, settings.views_topic, final)
            second = run_cli(env, "batch", "--date", str(D), "--output", output)
            kept = read_promotion(session, D)
            deltas = read_version_deltas(session, D, 2, 1)
            promoted = run_cli(env, "promote", "--date", str(D), "--version", "2", "--unreconciled")
            yield {"first": first, "found": found, "second": second, "kept": kept, "deltas": deltas,
                   "promoted": promoted, "versions": {v.version: v for v in read_versions(session, D)},
                   "promotion": read_promotion(session, D), "records": read_restatements(session, D)}
        finally:
            session.cluster.shutdown()


def test_the_first_version_counts_the_day(late):
    assert late["first"].returncode == 0, late["first"].stderr[-3000:]
    assert late["versions"][1].total_views == 50 and late["versions"][1].gaps == ()


def test_a_record_archived_into_a_final_days_hours_is_found_beyond_what_the_final_version_read(late):
    assert late["found"] == ["partition 0: 1 records arrived in the window's hours after final version 1 read them "
                             "(offsets 50-50; a producer clock behind?)"]


def test_the_next_batch_counts_it_into_a_new_version_and_the_final_one_keeps_serving(late):
    run = late["second"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert "version 1 is final: a new version restates it" in run.stderr
    assert late["versions"][2].total_views == 51 and late["versions"][2].gaps == ()
    assert late["kept"].version == 1
    assert [(d.video_id, d.old_views, d.new_views) for d in late["deltas"]] == [("v1", 50, 51)]


def test_promoting_it_writes_the_restatement_record_first(late):
    assert late["promoted"].returncode == 0, late["promoted"].stderr[-3000:]
    assert "restated: +1 views, 1 videos changed, money 0.0025 EUR (recorded)" in late["promoted"].stdout
    assert late["promotion"].version == 2
    [record] = late["records"]
    assert (record.old_version, record.new_version, record.views_delta, record.videos_changed) == (1, 2, 1, 1)
    assert record.money_delta == {"EUR": "0.0025"} and record.command == "viewcount promote --unreconciled"
    assert record.reason == "promotion by hand of a new version over a final one"
    [video] = record.videos
    assert (video.video_id, video.old_views, video.new_views, Decimal(video.money_delta), video.currency) == \
        ("v1", 50, 51, Decimal("0.0025"), "EUR")
