"""The archiver against the real Kafka, MinIO and Cassandra: every record, exactly once."""

from __future__ import annotations

import pytest

from tests.support.speed import assert_archive_matches_topic, isolated, viewcount

pytestmark = pytest.mark.integration


def test_archive_holds_every_record_exactly_once_with_completeness(stack, spark, tmp_path):
    with isolated(stack, "test-archive") as (settings, env):
        viewcount(env, "produce", "--events", "20000", "--seed", "9", "--day", "2026-11-21",
                  "--malformed", "0.05", "--oracle", str(tmp_path / "oracle"))
        path = f"s3a://{settings.s3_bucket}/tests/{settings.views_topic}"
        viewcount(env, "archive", "--available-now", "--max-offsets-per-trigger", "5000",
                  "--metrics-port", "0", "--path", path, "--checkpoint", str(tmp_path / "checkpoint"))
        assert_archive_matches_topic(settings, spark, path)
        assert_one_file_per_hour_and_core(settings, path)


def assert_one_file_per_hour_and_core(settings, path: str) -> None:
    """A batch spanning several arrival hours writes at most a file per hour and core of
    its Spark master, not one per hour and Kafka partition (six here)."""
    import re
    from collections import Counter

    from storage.s3 import client, split_uri

    cores = re.fullmatch(r"local\[(\d+)\]", settings.spark.spark_master)
    if not cores:
        pytest.skip(f"writer tasks of master {settings.spark.spark_master} not known here")
    bucket, prefix = split_uri(path)
    files = Counter()
    for page in client(settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet"):
                files[item["Key"].rsplit("/", 1)[0]] += 1
    assert len(files) > 4  # several batches, each over several arrival hours
    assert max(files.values()) <= int(cores.group(1)) < 6
