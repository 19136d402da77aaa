"""The JVM cell writer (``jvm/cell-writer``, ``storage.jvm_rows``) against the real Cassandra:
the same rows, values and write timestamps as the Python writer, across partitions and
batch boundaries, and a failure that fails the call."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

pytestmark = pytest.mark.integration


def _cells(spark, video_ids: list[str], minutes: int):
    """``minutes`` cells of each video from 23:00 on 2026-11-25: over a day boundary (two
    partitions a video) and over the 50-row unlogged batches."""
    rows = [(video, "2026-11-25 23:00:00", m, (i + 1) * 1_000 + m)
            for i, video in enumerate(video_ids) for m in range(minutes)]
    return (spark.createDataFrame(rows, "video_id string, start string, offset int, views long")
            .selectExpr("video_id", "to_timestamp(start) + make_interval(0, 0, 0, 0, 0, offset) AS minute", "views")
            .repartition(3))


def test_the_jvm_writer_writes_what_the_python_writer_writes(spark, stack, cassandra_session):
    from storage.minute_counts import read_partitions, read_write_timestamps, write_minute_counts

    by_writer = {}
    for writer in ("jvm", "python"):
        settings = stack.replaced(cassandra=stack.cassandra.model_copy(update={"writer": writer}))
        videos = [f"{writer}-{uuid.uuid4().hex[:8]}" for _ in range(4)]
        assert write_minute_counts(_cells(spark, videos, 130), settings, write_timestamp=1_700_000_000_000_123) == 520
        table = read_write_timestamps(cassandra_session)
        by_writer[writer] = {(videos.index(video), minute): value for (video, minute), value in table.items()
                             if video in videos}
    assert len(by_writer["jvm"]) == 520
    assert by_writer["jvm"] == by_writer["python"]
    first = dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.timezone.utc)
    assert by_writer["jvm"][(2, first + dt.timedelta(minutes=129))] == (3_129, 1_700_000_000_000_123)
    days = {day for video, day in read_partitions(cassandra_session) if video.startswith("jvm-")}
    assert {dt.date(2026, 11, 25), dt.date(2026, 11, 26)} <= days


def test_a_failed_jvm_write_fails_the_call(spark, stack):
    from storage.minute_counts import write_minute_counts

    missing = stack.replaced(keyspace=f"missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(Exception, match="(?i)keyspace"):
        write_minute_counts(_cells(spark, ["v1"], 2), missing)


def test_both_writers_write_the_same_batch_version(spark, stack, cassandra_session):
    """The nightly batch's cells (``write_batch_minute_views``: a date and an int version
    among the key columns) come out the same from the JVM and from Python."""
    from storage.batch_results import read_version_cells, write_batch_minute_views

    day = dt.date(2026, 11, 25)
    video = f"batch-{uuid.uuid4().hex[:8]}"
    cells = (spark.createDataFrame([(video, m, m + 1) for m in range(60)], "video_id string, offset int, views long")
             .selectExpr("video_id", "to_timestamp('2026-11-25 10:00:00') + make_interval(0, 0, 0, 0, 0, offset) AS minute",
                         "views"))
    written = {}
    for version, writer in ((901, "jvm"), (902, "python")):
        settings = stack.replaced(cassandra=stack.cassandra.model_copy(update={"writer": writer}))
        write_batch_minute_views(cells, settings, day, version)
        written[writer] = {cell: views for cell, views in read_version_cells(cassandra_session, day, version).items()
                           if cell[0] == video}
    assert len(written["jvm"]) == 60 and written["jvm"] == written["python"]
    assert written["jvm"][(video, dt.datetime(2026, 11, 25, 10, 59, tzinfo=dt.timezone.utc))] == 60


JOB = '''
import sys
from settings.environment import Settings
from spark_runtime.session import build_session
from storage.minute_counts import write_minute_counts
settings = Settings.from_env()
spark = build_session("jvm-writer-exit", settings, master="local[1]")
cells = spark.createDataFrame([("exit-check", "2026-11-25 10:00:00", 3)], "video_id string, minute string, views long")
print("written", write_minute_counts(cells.selectExpr("video_id", "to_timestamp(minute) AS minute", "views"), settings))
spark.stop()
'''


def test_a_job_spark_submit_runs_ends_its_jvm_after_writing(stack, tmp_path):
    """The Java driver's session threads are not daemons: a job run by spark-submit (the
    nightly DAG's batch) kept its JVM alive for good once it had written, until
    ``EXIT_WITH_THE_JOB`` made spark-submit exit with the job."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pyspark

    from spark_runtime.session import submit_options

    job = tmp_path / "job.py"
    job.write_text(JOB)
    options = submit_options(stack, "local[1]")
    env = {**os.environ, "SPARK_SUBMIT_OPTS": options["driver_java_options"], "PYSPARK_PYTHON": sys.executable,
           "VIEWCOUNT_KEYSPACE": stack.keyspace, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    done = subprocess.run([str(submit), "--master", "local[1]", "--driver-class-path", options["driver_class_path"],
                           str(job)], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "written 1" in done.stdout
