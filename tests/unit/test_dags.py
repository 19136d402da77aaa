"""Policy over every DAG: it imports without errors, has tags and retries >= 2; and the
nightly DAG wires its steps in the order DESIGN gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_imports_and_follows_policy(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAG found"
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.retries >= 2, (dag.dag_id, task.task_id)


def test_nightly_runs_its_steps_in_order(dagbag):
    dag = dagbag.dags["viewcount_nightly"]
    order = ["archive_complete", "validate_archive", "batch", "validate_batch", "reconcile",
             "publish_report", "gate", "promote"]
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)


def test_nightly_promotes_the_version_its_reconcile_task_compared(dagbag):
    """promote takes the batch version from the reconciliation's XCom (through the
    published report), not the newest version at its own moment: the wiring here, what
    the task does with it in tests/integration/test_dag_promote_wiring.py."""
    dag = dagbag.dags["viewcount_nightly"]
    promote = dag.get_task("promote")
    assert {"gate", "publish_report"} <= promote.upstream_task_ids
    published = promote.op_args[0]  # the XComArg of publish_report's result
    assert published.operator.task_id == "publish_report"
