"""Session-wide fixtures: one local SparkSession, and the real local stack started once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole run, with the connector jars on its classpath."""
    from storage.spark import build_session

    session = build_session(
        "viewcount-tests",
        extra_conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()
