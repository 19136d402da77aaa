"""The batch layer against the real Kafka, MinIO and Cassandra, checked with the oracle.

One generated dataset for the whole module (Spark jobs are slow to start): two adjacent
days produced with many late events, duplicates and malformed records, archived by the
real archiver, then day D recomputed, rerun, broken, recomputed with gaps, promoted and
rolled back. The tests run in file order and build on each other's versions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from tests.support.speed import isolated, viewcount
from tests.support.batch import (
    MS_PER_HOUR,
    day_start_ms,
    delete_archive_batch_hour,
    delete_prefix,
    expected_stats,
    expected_top,
    expected_views,
    parquet_cells,
    run_cli,
    topic_records,
    version_cells,
    version_row,
    version_top,
)

pytestmark = pytest.mark.integration

D = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=3)
EVENTS_PER_DAY = "8000"
CUTOFF_MS = day_start_ms(D) + 24 * MS_PER_HOUR + MS_PER_HOUR  # default grace: 1 hour


@dataclass
class Dataset:
    settings: object
    env: dict
    records: list
    output: str
    first_run: object
    session: object


@pytest.fixture(scope="module")
def dataset(stack, tmp_path_factory):
    from storage.archive import archive_path
    from storage.cassandra import connect

    tmp = tmp_path_factory.mktemp("batch")
    with isolated(stack, "test-batch") as (settings, env):
        for days_on, seed in ((0, "21"), (1, "22")):  # in arrival order: offsets follow timestamps
            viewcount(env, "produce", "--events", EVENTS_PER_DAY, "--seed", seed, "--day",
                      str(D + dt.timedelta(days=days_on)), "--late", "0.1", "--duplicates", "0.05",
                      "--malformed", "0.02", "--oracle", str(tmp / f"oracle-{days_on}"))
        viewcount(env, "archive", "--available-now", "--metrics-port", "0", "--max-offsets-per-trigger", "8000",
                  "--checkpoint", str(tmp / "archiver"))
        output = f"s3a://{settings.s3_bucket}/tests/batch-{settings.views_topic}"
        first_run = viewcount(env, "batch", "--date", str(D), "--output", output)
        session = connect(settings)
        try:
            yield Dataset(settings, env, topic_records(settings), output, first_run, session)
        finally:
            session.cluster.shutdown()
            delete_prefix(settings, output)
            delete_prefix(settings, archive_path(settings))


def test_version_1_equals_the_oracle_with_grace_arrivals_in_and_later_ones_out(dataset):
    expected = expected_views(dataset.records, D, CUTOFF_MS)
    without_cutoff = expected_views(dataset.records, D, 2**62)
    day_end_ms = day_start_ms(D) + 24 * MS_PER_HOUR
    in_grace = [r for r in dataset.records if day_end_ms <= r.timestamp_ms < CUTOFF_MS]

    assert version_cells(dataset.session, D, 1) == expected
    # The dataset holds both edges: views of D that arrived in the grace hour count, and
    # views of D that arrived after the cutoff do not.
    assert expected != expected_views([r for r in dataset.records if r not in in_grace], D, CUTOFF_MS)
    assert sum(without_cutoff.values()) > sum(expected.values())
    assert version_top(dataset.session, D, 1) == expected_top(expected)
    assert len(version_top(dataset.session, D, 1)) == 1000  # more videos than that were watched


def test_version_1_records_its_input_statistics_and_parquet(dataset):
    row = version_row(dataset.session, D, 1)
    stats = expected_stats(dataset.records, D, CUTOFF_MS)

    assert (row.status, row.allow_gaps, row.gaps) == ("complete", False, None)
    assert row.cutoff.replace(tzinfo=dt.timezone.utc).timestamp() * 1000 == CUTOFF_MS
    assert {name: getattr(row, name) for name in stats if name != "invalid"} == {
        name: value for name, value in stats.items() if name != "invalid"}
    assert {reason: n for reason, n in row.invalid.items() if n} == stats["invalid"]
    assert row.past_cutoff > 0  # views of D that arrived in the hour after the cutoff: not counted
    assert row.parquet_uri == f"{dataset.output}/day={D}/version=1"
    assert parquet_cells(dataset.settings, row.parquet_uri) == version_cells(dataset.session, D, 1)
    assert set(row.input_offsets) == {0, 1, 2, 3, 4, 5}


def test_every_stage_reports_one_line(dataset):
    lines = [line for line in dataset.first_run.stderr.splitlines() if line.startswith(f"batch {D}: ")]

    stages = [line.removeprefix(f"batch {D}: ").split(" ")[0] for line in lines]
    assert stages == ["arrivals", "completeness", "read", "invalid", "duplicates", "wrote"]
    assert "completeness ok: 6 partitions" in lines[1]
    assert lines[-1].startswith(f"batch {D}: wrote version 1: ")


def test_a_rerun_rewrites_version_1_with_the_same_rows(dataset):
    from storage.batch_results import read_versions

    before = version_cells(dataset.session, D, 1)

    rerun = viewcount(dataset.env, "batch", "--date", str(D), "--output", dataset.output)

    assert f"batch {D}: rewrote version 1: " in rerun.stderr
    assert version_cells(dataset.session, D, 1) == before
    assert [version.version for version in read_versions(dataset.session, D)] == [1]


def test_a_gap_is_refused_and_counted_with_allow_gaps_as_a_new_version(dataset):
    row = next(r for r in _hours(dataset, D) if r.arrival_hour == 12)
    deleted = delete_archive_batch_hour(dataset.settings, D, 12, row.batch_id)
    args = ("batch", "--date", str(D), "--output", dataset.output)

    refused = run_cli(dataset.env, *args)
    allowed = viewcount(dataset.env, *args, "--allow-gaps")

    assert refused.returncode == 4 and "Traceback" not in refused.stderr
    error = refused.stderr.strip().splitlines()[-1]  # after the window's progress line
    assert error.startswith(f"viewcount batch: error: archive of {D} is incomplete: ")
    missing = [f"partition {r.kafka_partition}: offsets {r.first_offset}-{r.last_offset} missing" for r in deleted]
    assert all(gap in error for gap in missing)
    assert f"batch {D}: wrote version 2: " in allowed.stderr
    kept = [r for r in dataset.records if not any(
        r.partition == d.kafka_partition and d.first_offset <= r.offset <= d.last_offset for d in deleted)]
    assert version_cells(dataset.session, D, 2) == expected_views(kept, D, CUTOFF_MS)
    version_2 = version_row(dataset.session, D, 2)
    assert version_2.allow_gaps and len(version_2.gaps) == len(deleted)
    assert all(any(gap in recorded for recorded in version_2.gaps) for gap in missing)


def _reconciled(dataset, version: int, status: str) -> None:
    """The outcome of a reconciliation of this version, stored as `viewcount reconcile` stores it."""
    from storage.reconciliations import write_summary

    write_summary(dataset.session, D, {"status": status, "batch_version": version, "report_uri": None})


def test_promote_refuses_a_version_without_a_passing_reconciliation(dataset):
    from storage.batch_results import read_promotion

    never = run_cli(dataset.env, "promote", "--date", str(D))  # the newest, version 2
    _reconciled(dataset, 2, "fail")
    failed = run_cli(dataset.env, "promote", "--date", str(D), "--version", "2")
    _reconciled(dataset, 1, "pass")  # a later pass of another version proves nothing of version 2
    still = run_cli(dataset.env, "promote", "--date", str(D), "--version", "2")

    for result, why in ((never, "it was never reconciled"), (failed, "its reconciliation failed"),
                        (still, "its reconciliation failed")):
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"version 2 of {D} has no passing reconciliation ({why})" in result.stderr
        assert f"viewcount reconcile --date {D} --version 2" in result.stderr
    assert read_promotion(dataset.session, D) is None


def test_an_unreconciled_promotion_is_an_explicit_recorded_override(dataset):
    from storage.batch_results import read_promotion, read_unreconciled_promotions

    overridden = viewcount(dataset.env, "promote", "--date", str(D), "--version", "2", "--unreconciled")
    back = viewcount(dataset.env, "promote", "--date", str(D), "--version", "1")  # its reconciliation passed

    assert overridden.stdout.strip() == (f"day {D}: promoted version 2 (previous: none); "
                                         "without a passing reconciliation, by override (recorded)")
    assert "without a passing reconciliation" in overridden.stderr  # the warning in the log
    assert back.stdout.strip().startswith(f"day {D}: rolled back to version 1 (previous: version 2); restated: ")
    assert [(version, status) for _, version, status in read_unreconciled_promotions(dataset.session, D)] == [
        (2, "fail")]
    assert read_promotion(dataset.session, D).version == 1


def test_promote_serves_the_newest_complete_version_and_rolls_back(dataset):
    from storage.batch_results import read_promotion, read_promotion_history
    from storage.restatements import read_restatements

    _reconciled(dataset, 2, "pass")
    promoted = viewcount(dataset.env, "promote", "--date", str(D))
    rolled_back = viewcount(dataset.env, "promote", "--date", str(D), "--version", "1")
    again = viewcount(dataset.env, "promote", "--date", str(D), "--version", "1")

    # Each switch of a promoted day leaves a restatement record; these versions were not
    # counted against each other, so only their totals differ on record.
    from storage.batch_results import read_versions

    totals = {v.version: v.total_views for v in read_versions(dataset.session, D)}
    moved = totals[2] - totals[1]
    assert promoted.stdout.strip() == (f"day {D}: promoted version 2 (previous: version 1); restated: "
                                       f"{moved:+,} views, per-video changes unknown (recorded)")
    assert rolled_back.stdout.strip() == (f"day {D}: rolled back to version 1 (previous: version 2); restated: "
                                          f"{-moved:+,} views, per-video changes unknown (recorded)")
    assert again.stdout.strip() == f"day {D}: version 1 is already promoted; nothing changed"
    records = read_restatements(dataset.session, D)
    assert [(r.old_version, r.new_version, r.views_delta, r.command) for r in records[:2]] == [
        (2, 1, -moved, "viewcount promote"), (1, 2, moved, "viewcount promote")]
    assert records[0].reason.startswith("rollback by hand") and "per-video changes unknown" in records[0].reason
    current = read_promotion(dataset.session, D)
    assert (current.version, current.previous_version) == (1, 2)
    history = read_promotion_history(dataset.session, D)
    assert [(p.version, p.previous_version) for p in history] == [(1, 2), (2, 1), (1, 2), (2, None)]


def test_a_promotion_that_raced_another_switches_nothing(dataset):
    """The switch is a compare-and-set on the version read: a promoter that read a stale
    served version fails in one line and leaves the day as it is."""
    from storage.batch_results import PromotionConflict, promote, read_promotion, read_promotion_history

    served, history = read_promotion(dataset.session, D).version, len(read_promotion_history(dataset.session, D))
    with pytest.raises(PromotionConflict, match="the served version changed meanwhile"):
        promote(dataset.session, D, 2, previous=2)  # read before someone rolled back to 1
    with pytest.raises(PromotionConflict, match="expected none, found 1"):
        promote(dataset.session, D, 2, previous=None)  # read before anything was promoted

    assert (served, read_promotion(dataset.session, D).version) == (1, 1)
    assert len(read_promotion_history(dataset.session, D)) == history


def test_a_rollback_from_a_host_whose_clock_lags_still_takes_effect(dataset):
    """Ordered by Cassandra's Paxos ballot, not by the writer's clock: with plain writes,
    a rollback stamped an hour in the past would lose to the promotion it undoes."""
    import time

    from storage.batch_results import promote, read_promotion
    from storage.cassandra import connect

    lagging = connect(dataset.settings)
    lagging.cluster.timestamp_generator = lambda: int((time.time() - 3600) * 1_000_000)
    try:
        promote(dataset.session, D, 2, previous=1)
        promote(lagging, D, 1, previous=2)
    finally:
        lagging.cluster.shutdown()

    assert read_promotion(dataset.session, D).version == 1


def test_promote_refuses_unknown_and_incomplete_versions_in_one_line(dataset):
    from storage.batch_results import VersionClaim, claim_version, read_promotion

    claim_version(dataset.session, VersionClaim(D, 3, "unfinished", dt.datetime.now(dt.timezone.utc), False))

    cases = {
        ("--date", str(D), "--version", "3"): f"version 3 of {D} is not complete",
        ("--date", str(D), "--version", "9"): f"day {D} has no version 9",
        ("--date", str(D + dt.timedelta(days=30))): "has no batch version",
        ("--date", "2026-02-30"): "is not a date",
    }
    for args, message in cases.items():
        result = run_cli(dataset.env, "promote", *args)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert read_promotion(dataset.session, D).version == 1


def _hours(dataset, day):
    from storage.archive import read_hours

    return read_hours(dataset.session, dataset.settings.views_topic, [day])
