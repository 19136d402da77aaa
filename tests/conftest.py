"""Session-wide fixtures: one local SparkSession, and the real local stack started once.

Each test session uses a keyspace of its own (dropped at the end) and the test bucket,
and tests that produce use unique topic names: no run ever sees rows of another run, of
the demo or of a developer's own data.
"""

from __future__ import annotations

import logging
import os
import uuid

import pytest

SESSION_KEYSPACE = f"test_{uuid.uuid4().hex[:10]}"
os.environ.setdefault("VIEWCOUNT_KEYSPACE", SESSION_KEYSPACE)
os.environ.setdefault("VIEWCOUNT_S3_BUCKET", "viewcount-test")
# Every local driver the tests start (the in-process session, each CLI's) compiles with the
# JVM's quick compiler only: the tests' streaming runs read thousands of records, not
# millions, and each ran 10-15 s quicker (docs/benchmarks.md). Only the JIT tier changes.
os.environ.setdefault("VIEWCOUNT_QUICK_JIT", "all")
# The tests produce records stamped on fixed past days (2026-11-08, ...) into topics created
# through ensure_topics, which bound how old a views record may be by the restatement
# horizon (storage.topics): ten years keeps every such day accepted as the days pass.
# A test of the bound itself sets its own horizon.
os.environ.setdefault("VIEWCOUNT_RESTATEMENT_DAYS", "3650")


@pytest.fixture(scope="session")
def stack():
    """The real Kafka, Cassandra and MinIO; started here unless already up, stopped after."""
    from infra import stack as local_stack
    from settings.environment import Settings

    settings = Settings.from_env()
    # Ours to stop only if none of its servers ran before: a server that is merely slow to
    # answer a health check (a loaded machine) was still started by someone else.
    started_here = all(entry.pid is None for entry in local_stack.status(settings))
    local_stack.up(settings)  # also ensures topics, schema and bucket of the test settings
    yield Settings.from_env()
    if settings.keyspace == SESSION_KEYSPACE:
        from storage.cassandra import drop_keyspace

        drop_keyspace(settings)
    if started_here and not os.environ.get("VIEWCOUNT_KEEP_STACK"):
        local_stack.down(settings)


@pytest.fixture()
def unique_topic(stack):
    """A fresh 6-partition topic for one test, deleted after it."""
    from storage.topics import delete_topics, ensure_topics

    name = f"test-{uuid.uuid4().hex[:12]}"
    ensure_topics(stack, {name: 6})
    yield name
    delete_topics(stack, [name])


@pytest.fixture(scope="session")
def cassandra_session(stack):
    from storage.cassandra import connect

    session = connect(stack)
    yield session
    session.cluster.shutdown()


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole run, with the connector jars on its classpath."""
    from settings.environment import Settings
    from spark_runtime.session import build_session

    session = build_session(
        "viewcount-tests", Settings.from_env(),
        extra_conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()
    # py4j says goodbye at INFO from __del__ as the interpreter exits, when pytest has closed
    # the stream its handler wrote to ("--- Logging error ---" after the summary).
    logging.getLogger("py4j").setLevel(logging.WARNING)
