"""A class-data archive (JVM AppCDS) for local Spark drivers: half the start-up of a JVM.

A local Spark driver spends most of its first ten seconds loading and verifying the same
~15,000 classes (Spark SQL, Hadoop, S3A, Kafka, Parquet, codegen) from some 400 jars. A
dynamic class-data archive holds them pre-parsed: the JVM maps it and skips that work.
Measured on the 2-core reference machine: a session 11.2 s -> 6.6 s, its first job 7.3 s
-> 4.2 s (docs/benchmarks.md). Throughput after start-up is unchanged.

The archive belongs to one Java runtime and one class path (Spark's jars and the connector
jars), so its file name is a digest of those; the JVM checks it again when it maps the
file and, on any mismatch, warns once and loads the classes from the jars as usual. It is
built once per machine by `viewcount stack up` / `make artifacts` (``ensure_class_archive``:
a short training run of the counting rules, Parquet and a shuffle, then a clean JVM exit
writes the file) and only ever used by drivers on a local master: on a cluster the cluster
manager starts the JVMs, on other hosts.

``python -m storage.spark_classes ARCHIVE`` is the training run (called by
``ensure_class_archive`` in a process of its own).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from storage.errors import UserError
from storage.settings import Settings

# A few minutes at most on a loaded 2-core machine; a training run that takes longer is stuck.
TRAINING_TIMEOUT_S = 600
ARCHIVES_KEPT = 3  # ~180 MB each


def _class_path_digest(settings: Settings) -> str:
    """Names, sizes and times of every jar a local driver loads, and the Java runtime."""
    import pyspark

    from storage.spark import connector_jars

    java = shutil.which("java")
    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar")) + connector_jars(settings)
    digest = hashlib.sha256(f"{pyspark.__version__}\n{Path(java).resolve() if java else ''}\n".encode())
    for jar in jars:
        stat = jar.stat()
        digest.update(f"{jar}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def class_archive(settings: Settings) -> Path:
    """Where the archive for this machine's Java, Spark and connector jars lives (or would)."""
    return settings.cache_dir / "spark-classes" / f"driver-{_class_path_digest(settings)}.jsa"


def driver_java_options(settings: Settings) -> str:
    """The local driver's JVM options: the archive when it has been built, else none."""
    archive = class_archive(settings)
    return f"-XX:SharedArchiveFile={archive}" if archive.is_file() else ""


def ensure_class_archive(settings: Settings) -> Path:
    """Build the archive unless it exists: a training session in a process of its own dumps
    the classes it loaded at its clean exit into a draft, which is then moved into place
    whole (a reader never maps half a file; two builds at once each move a whole one)."""
    archive = class_archive(settings)
    if archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    print(f"building the Spark class-data archive (once; a minute or two): {archive}", file=sys.stderr, flush=True)
    draft = archive.with_name(f"{archive.name}.{os.getpid()}.draft")
    log = settings.cache_dir / "logs" / "spark-class-archive.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        try:
            returncode = subprocess.run([sys.executable, "-m", "storage.spark_classes", str(draft)],
                                        stdout=output, stderr=subprocess.STDOUT, timeout=TRAINING_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    if returncode != 0 or not draft.is_file():
        draft.unlink(missing_ok=True)
        raise UserError(f"building the Spark class-data archive failed or took over {TRAINING_TIMEOUT_S} s; see {log}")
    os.replace(draft, archive)
    # Archives of replaced jars or runtimes: keep a few (several checkouts, each with its
    # own virtualenv, may share the cache), remove the oldest.
    kept = sorted(archive.parent.glob("driver-*.jsa"), key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in kept[ARCHIVES_KEPT:]:
        stale.unlink(missing_ok=True)
    return archive


def _train(draft: Path) -> None:
    """Load the classes the jobs load: a session with the connectors, the counting rules'
    parsing over JSON records, a shuffle and an aggregation, Parquet written and read, and
    a stateful streaming query."""
    import datetime as dt

    from pyspark.sql import functions as F

    from counting.events import parse_events, valid_events
    from counting.views import (
        DEFAULT_WATERMARK_DELAY, count_per_minute, count_views_per_minute, drop_duplicate_events,
    )
    from storage.spark import build_session

    settings = Settings.from_env()
    spark = build_session("viewcount-class-archive", settings,
                          extra_conf={"spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={draft}"})
    moment = dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone.utc)  # each record arrives after its event
    values = [(f'{{"event_id":"{index:08x}-0000-4000-8000-000000000000","video_id":"video{index % 7:06d}",'
               f'"event_time":"2026-01-01T00:{index % 60:02d}:00Z"}}').encode() for index in range(200)]
    records = spark.createDataFrame(
        [("views", index % 3, index, moment, None, value) for index, value in enumerate(values)],
        "topic string, partition int, offset long, timestamp timestamp, key binary, value binary")
    counts = (records.transform(parse_events()).transform(valid_events)
              .transform(drop_duplicate_events).transform(count_per_minute))
    streamed = []
    with tempfile.TemporaryDirectory() as folder:
        counts.write.parquet(f"{folder}/counts")
        total = spark.read.parquet(f"{folder}/counts").agg(F.sum("views")).first()[0]
        # The streaming jobs' classes too: a stateful query (RocksDB state, watermark) into
        # foreachBatch, over the records as files.
        records.write.parquet(f"{folder}/records")
        query = (spark.readStream.schema(records.schema).parquet(f"{folder}/records")
                 .transform(parse_events()).transform(count_views_per_minute(DEFAULT_WATERMARK_DELAY))
                 .writeStream.outputMode("update")
                 .foreachBatch(lambda batch, _: streamed.append(batch.agg(F.sum("views")).first()[0] or 0))
                 .option("checkpointLocation", f"{folder}/checkpoint").trigger(availableNow=True).start())
        query.awaitTermination()
    if total != len(values) or sum(streamed) != len(values):
        raise RuntimeError(f"training run counted {total} and {sum(streamed)} views of {len(values)} events")
    gateway = spark.sparkContext._gateway
    spark.stop()
    # The JVM writes the archive as it exits: close its stdin (it exits on EOF) and wait.
    gateway.shutdown()
    process = gateway.proc
    process.stdin.close()
    process.wait(timeout=TRAINING_TIMEOUT_S)


if __name__ == "__main__":
    _train(Path(sys.argv[1]))
