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

``python -m spark_runtime.training ARCHIVE`` is the training run (called by
``ensure_class_archive`` in a process of its own).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from settings.errors import UserError
from settings.environment import Settings
from spark_runtime.jars import connector_jars

log = logging.getLogger(__name__)

# A few minutes at most on a loaded 2-core machine; a training run that takes longer is stuck.
TRAINING_TIMEOUT_S = 600
ARCHIVES_KEPT = 3  # ~180 MB each


def _class_path_digest(settings: Settings) -> str:
    """Names, sizes and times of every jar a local driver loads, and the Java runtime."""
    import pyspark

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
    log.info(f"building the Spark class-data archive (once; a minute or two): {archive}")
    draft = archive.with_name(f"{archive.name}.{os.getpid()}.draft")
    training_log = settings.cache_dir / "logs" / "spark-class-archive.log"
    training_log.parent.mkdir(parents=True, exist_ok=True)
    with training_log.open("w") as output:
        try:
            returncode = subprocess.run([sys.executable, "-m", "spark_runtime.training", str(draft)],
                                        stdout=output, stderr=subprocess.STDOUT, timeout=TRAINING_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    if returncode != 0 or not draft.is_file():
        draft.unlink(missing_ok=True)
        raise UserError(f"building the Spark class-data archive failed or took over {TRAINING_TIMEOUT_S} s; see {training_log}")
    os.replace(draft, archive)
    # Archives of replaced jars or runtimes: keep a few (several checkouts, each with its
    # own virtualenv, may share the cache), remove the oldest.
    kept = sorted(archive.parent.glob("driver-*.jsa"), key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in kept[ARCHIVES_KEPT:]:
        stale.unlink(missing_ok=True)
    return archive
