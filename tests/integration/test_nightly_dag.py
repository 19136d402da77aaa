"""The nightly DAG end to end on the real stack: `viewcount nightly --date D`, which is
`airflow dags test viewcount_nightly D` with a private Airflow home (SQLite, no scheduler).

One day is produced, counted by the speed layer (in small micro-batches, so some records
arrive behind its watermark) and archived. The first DAG run must be green: every task in
order, the batch equal to the oracle, promoted, reconciled with `pass`, the report and the
Data Docs in MinIO. Then one billable speed cell is deleted and the DAG runs again: it
recomputes the day, reconciles with `fail`, and stops at the gate. The rerun's batch has
the same archive input, so it rewrites version 1 with the same numbers, and the promotion
is untouched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from tests.support.nightly import (
    RESTATE_TASKS, TASK_LINE, TASKS, chain, day_state, day_version_cells, restate_branch,
)
from tests.support.speed import isolated, viewcount
from tests.support.batch import run_cli
from tests.support.reconcile import (
    day_start_ms, rewrite_speed_cells, run_together, speed_rows, write_catalog_csv,
)
from oracle import counts as oracle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3000)]

DAY = dt.date(2026, 11, 12)
VIDEOS = 300


@dataclass
class Run:
    process: object  # the CompletedProcess of `viewcount nightly`
    promoted: int | None
    versions: dict  # version -> status
    summary: dict

    def outcomes(self) -> list[tuple[str, str]]:
        return TASK_LINE.findall(self.process.stderr)


@dataclass
class Nightly:
    settings: object
    expected: dict  # (video, minute ms) -> views of DAY, from the oracle
    green: Run
    green_cells: dict
    s3_keys: set
    docs: dict  # "index.html" or "<stage>/index.html" -> the page published in MinIO
    deleted: tuple
    red: Run
    red_cells: dict


def _state(settings, process) -> Run:
    state = day_state(settings, DAY)
    return Run(process, state.promoted, {number: version.status for number, version in state.versions.items()},
               state.summary)


def _cells(settings, version: int) -> dict:
    return day_version_cells(settings, DAY, version)


@pytest.fixture(scope="module")
def nightly(stack, tmp_path_factory):
    from storage.s3 import client

    folder = tmp_path_factory.mktemp("nightly")
    with isolated(stack, "test-nightly") as (settings, env):
        env = {**env, "VIEWCOUNT_AIRFLOW_HOME": str(folder / "airflow"), "VIEWCOUNT_DAG_RETRY_DELAY_SECONDS": "5"}
        viewcount(env, "produce", "--events", "6000", "--seed", "12", "--day", str(DAY), "--videos", str(VIDEOS),
                  "--oracle", str(folder / "oracle"))
        catalog = write_catalog_csv(folder / "catalog.csv", VIDEOS)
        viewcount(env, "catalog", "load", str(folder / "catalog.csv"))
        run_together(env, ("speed", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "speed"),
                           "--max-offsets-per-trigger", "1000"),
                     ("archive", "--available-now", "--metrics-port", "0", "--checkpoint", str(folder / "archive")))
        start = day_start_ms(DAY)
        expected = {cell: views for cell, views in oracle.read_counts(folder / "oracle" / "counts.parquet").items()
                    if start <= cell[1] < start + 86_400_000}

        green = _state(settings, run_cli(env, "nightly", "--date", str(DAY), timeout=2400))
        green_cells = _cells(settings, green.promoted) if green.promoted else {}
        s3 = client(settings)
        listed = s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=f"reports/day={DAY}/")
        keys = {item["Key"] for item in listed.get("Contents", [])}
        docs_root = f"reports/day={DAY}/data_docs/"
        docs = {key[len(docs_root):]: s3.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read().decode()
                for key in keys if key.startswith(docs_root) and key.endswith("index.html")}

        speed = speed_rows(settings, DAY)
        deleted = next(cell for cell, views in sorted(speed.items())
                       if catalog[cell[0]][0] and expected.get(cell) == views)
        rewrite_speed_cells(settings, DAY, [deleted], {})
        red = _state(settings, run_cli(env, "nightly", "--date", str(DAY), timeout=2400))
        red_cells = _cells(settings, max(red.versions))
        yield Nightly(settings, expected, green, green_cells, keys, docs, deleted, red, red_cells)


def test_the_dag_runs_green_with_every_task_in_order(nightly):
    process = nightly.green.process
    assert process.returncode == 0, process.stderr[-4000:]
    assert chain(nightly.green.outcomes()) == [(task, "success") for task in TASKS]
    assert restate_branch(nightly.green.outcomes()) == [(task, "success") for task in RESTATE_TASKS]
    assert f"viewcount_nightly {DAY}: succeeded" in process.stderr


def test_the_promoted_batch_equals_the_oracle(nightly):
    assert nightly.green.promoted == 1 and nightly.green.versions == {1: "complete"}
    assert nightly.green_cells == nightly.expected


def test_the_reconciliation_passes_with_only_late_cells(nightly):
    summary = nightly.green.summary
    assert summary["status"] == "pass" and summary["batch_version"] == 1
    assert summary["views_batch"] == sum(nightly.expected.values())
    # The small micro-batches make the speed layer drop records behind its watermark: those
    # cells, and only those, diverge, and late is a cause billing accepts.
    assert summary["cells_divergent"] == summary["causes"]["late"] > 0
    assert summary["gate"]["failing_cells"] == 0


def test_the_report_and_the_data_docs_are_in_minio(nightly):
    prefix = f"reports/day={DAY}/"
    assert {prefix + "report.html", prefix + "summary.json"} <= nightly.s3_keys
    stages = {"archive": ["archive_records", "archive_offsets"], "batch": ["batch_counts", "batch_totals"],
              "reconciliation": ["reconciliation", "reconciliation_summary"]}
    assert set(nightly.docs) == {"index.html", *(f"{stage}/index.html" for stage in stages)}
    for stage, suites in stages.items():
        assert f'href="{stage}/index.html"' in nightly.docs["index.html"]
        pages = [key for key in nightly.s3_keys if key.startswith(f"{prefix}data_docs/{stage}/validations/")]
        assert len(pages) == len(suites), f"{stage}: validation pages {pages}"
        for suite in suites:
            assert f"{suite}-" in nightly.docs[f"{stage}/index.html"], f"{suite} missing from the {stage} Data Docs"


def test_a_billing_divergence_stops_the_dag_at_the_gate_before_promotion(nightly):
    red = nightly.red
    assert red.process.returncode == 1, red.process.stderr[-4000:]
    outcomes = chain(red.outcomes())
    assert outcomes[:-1] == [(task, "success") for task in TASKS[:6]]
    assert outcomes[-1] == ("gate", "failed")  # AirflowFailException: no retry, promote never runs
    assert "day not promoted" in red.process.stderr
    assert red.promoted == 1, "the gate must keep the earlier promotion"
    assert red.summary["status"] == "fail" and red.summary["batch_version"] == 1
    assert red.summary["causes"]["missing_in_speed"] == 1 and red.summary["gate"]["failing_cells"] == 1
    video, minute_ms = nightly.deleted
    assert [(d["video_id"], d["cause"]) for d in red.summary["divergences"] if d["cause"] != "late"] == \
        [(video, "missing_in_speed")]


def test_rerunning_the_day_rewrites_its_version_with_the_same_numbers(nightly):
    assert nightly.red.versions == {1: "complete"}
    assert nightly.red_cells == nightly.green_cells == nightly.expected
