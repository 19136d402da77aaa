"""The counter, the archiver and the batch on a Spark standalone cluster, not a local
master: `viewcount stack up --spark` starts a master and a worker as processes, the jobs
take `--master spark://127.0.0.1:7077`, the connector jars reach the executors with
--jars, and the counts are as exact as on a local master."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import pytest

from tests.support.speed import (
    consume, expected_speed_counts, isolated, logged_batches, speed_counts_of, viewcount,
)
from tests.support.batch import (
    MS_PER_HOUR, day_start_ms, delete_prefix, expected_views, topic_records, version_cells,
)

pytestmark = pytest.mark.integration

DAY = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=3)
CUTOFF_MS = day_start_ms(DAY) + 25 * MS_PER_HOUR  # the default grace: one hour


@pytest.fixture(scope="module")
def cluster(stack):
    from infra import stack as local_stack
    from infra.servers import SPARK_MASTER_UI_PORT, all_servers, spark_master_url

    spark = [server for server in all_servers(stack, spark=True) if server.name in local_stack.SPARK_SERVERS]
    ours = [server.name for server in spark if local_stack.running_pid(server) is None]
    local_stack.up(stack, spark=True)
    try:
        yield spark_master_url(), f"http://127.0.0.1:{SPARK_MASTER_UI_PORT}/json/", spark
    finally:
        for name in ours:
            local_stack.down(stack, only=name)


def test_the_master_and_the_worker_listen_on_loopback_only(cluster):
    from infra.stack import running_pid
    from tests.support.ports import is_loopback, listening_addresses

    for server in cluster[2]:
        addresses = listening_addresses(running_pid(server))
        assert server.ports()[0][1] in {port for _, port in addresses}, (server.name, addresses)
        assert all(is_loopback(host) for host, _ in addresses), (server.name, addresses)


def test_counter_archiver_and_batch_on_a_standalone_cluster_count_exactly(cluster, stack, tmp_path):
    from storage.archive import archive_path
    from storage.cassandra import connect

    master, master_state, _ = cluster
    with isolated(stack, "test-cluster") as (settings, env):
        # The driver's own ports on loopback too, as every server of the local stack.
        env = {**env, "SPARK_LOCAL_IP": "127.0.0.1"}
        viewcount(env, "produce", "--events", "6000", "--seed", "13", "--day", DAY.isoformat(),
                  "--late", "0.05", "--duplicates", "0.05", "--malformed", "0.02",
                  "--oracle", str(tmp_path / "oracle"))
        # The jobs one after the other: each application takes every core of the worker.
        viewcount(env, "speed", "--available-now", "--master", master, "--max-offsets-per-trigger", "2000",
                  "--metrics-port", "0", "--checkpoint", str(tmp_path / "counter"))
        viewcount(env, "archive", "--available-now", "--master", master, "--metrics-port", "0",
                  "--checkpoint", str(tmp_path / "archiver"))
        output = f"s3a://{settings.s3_bucket}/tests/cluster-{settings.views_topic}"
        viewcount(env, "batch", "--date", DAY.isoformat(), "--master", master, "--output", output)
        try:
            batches = logged_batches(settings, tmp_path / "counter" / "counts")
            assert len(batches) > 2
            expected, late_cells = expected_speed_counts(consume(settings, settings.views_topic), batches)
            assert speed_counts_of(settings, expected.keys() | late_cells.keys()) == expected

            session = connect(settings)
            try:
                assert version_cells(session, DAY, 1) == expected_views(topic_records(settings), DAY, CUTOFF_MS)
            finally:
                session.cluster.shutdown()
        finally:
            delete_prefix(settings, output)
            delete_prefix(settings, archive_path(settings))

    # They ran on the cluster's executors, not in a local driver.
    with urllib.request.urlopen(master_state, timeout=5) as response:
        finished = {app["name"] for app in json.loads(response.read())["completedapps"]}
    assert {"viewcount-counter", "viewcount-archiver"} <= finished
    assert any(name.startswith("viewcount-batch") for name in finished), finished
