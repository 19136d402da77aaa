"""SparkSession and spark-submit settings shared by the speed and batch layers.

Connector jars (Kafka source/sink, S3A) come from the artifact cache filled by
``viewcount stack up`` (or ``make``); nothing is resolved from a repository at run time.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from settings.errors import UserError
from settings.environment import Settings, SparkKnobs, launched_by_spark_submit
from spark_runtime.class_data import driver_java_options
from spark_runtime.jars import connector_jars

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def is_local(master: str | None) -> bool:
    return bool(master) and master.startswith("local")


# The JVM's quick compiler only (C1): compiled code in a third of the time, for a job whose
# queries each run about once (``SparkKnobs.quick_jit_for``). C1 alone sizes the code cache
# for a small client program (48 MB): a Spark driver fills that within a minute, and the JVM
# then stops compiling and interprets the rest of the run; so the cache keeps its usual size.
QUICK_JIT = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"

# The JVM writes its own warnings to standard output by default; a driver started by a CLI
# shares that CLI's standard output, whose contract is the command's result (``--json``).
# They go to standard error, with the usual decorations.
JVM_OUTPUT_TO_STDERR = "-Xlog:disable -Xlog:all=warning:stderr:uptime,level,tags -XX:+DisplayVMOutputToStderr"

# HotSpot never compiles a method of more than 8,000 bytes of bytecode; it interprets it
# for good. The code Spark generates for the stage that parses and validates the views
# (counting.events) is bigger than that, so without this flag every record was parsed by
# the bytecode interpreter: a third of the counter's time (docs/benchmarks.md).
COMPILE_HUGE_METHODS = "-XX:-DontCompileHugeMethods"


# A job spark-submit runs as a file ends its JVM once the job's Python exits, even when a
# library's non-daemon threads live on: the Cassandra Java driver's sessions of the cell
# writer (``storage.jvm_rows``), kept for the JVM's life. spark-submit reads it as a system
# property of its own JVM (``driver_java_options``).
EXIT_WITH_THE_JOB = "-Dspark.submit.callSystemExitOnMainExit=true"


# A local driver listens on loopback only. ``build_session`` sets it on the session; a job
# started by spark-submit gets it as system properties of the driver JVM as well, which
# Spark reads as settings from the JVM's start, whatever code builds the session.
LOOPBACK_DRIVER = "-Dspark.driver.host=127.0.0.1 -Dspark.driver.bindAddress=127.0.0.1"


def submit_options(settings: Settings, master: str | None, *, short_lived: bool = False) -> dict[str, str]:
    """How the connector jars reach the JVMs, as spark-submit options (``jars``,
    ``driver_class_path``, ``driver_java_options``). On a local master one JVM is driver and
    executor, so the jars go on its classpath where they lie; ``--jars`` would first copy
    them (690 MB, mostly the AWS SDK bundle) into the session's scratch folder, at every
    start; and that JVM maps the class-data archive (``spark_runtime.class_data``) when one
    was built, and for a ``short_lived`` job (one of the nightly's: each query runs about
    once; any job under ``VIEWCOUNT_QUICK_JIT=all``) the JVM's quick compiler only; its
    driver listens on loopback only (``LOOPBACK_DRIVER``). A cluster's executors need the
    jars shipped. On any master the driver's JVM keeps its own
    warnings off standard output."""
    jars = connector_jars(settings)
    if not is_local(master):
        return {"jars": ",".join(str(jar) for jar in jars),
                "driver_java_options": f"{JVM_OUTPUT_TO_STDERR} {COMPILE_HUGE_METHODS} {EXIT_WITH_THE_JOB}"}
    flags = [JVM_OUTPUT_TO_STDERR, COMPILE_HUGE_METHODS, EXIT_WITH_THE_JOB, LOOPBACK_DRIVER,
             driver_java_options(settings)]  # the class-data archive, once built
    if settings.spark.quick_jit_for(short_lived):
        flags.append(QUICK_JIT)
    return {"driver_class_path": os.pathsep.join(str(jar) for jar in jars),
            "driver_java_options": " ".join(flag for flag in flags if flag)}


def spark_conf(settings: Settings, *, with_connectors: bool = True, master: str | None = None,
               short_lived: bool = False) -> dict[str, str]:
    """Every Spark setting the project relies on, for builders and spark-submit alike."""
    conf = {
        # Executors' Python workers must run this environment, not whatever python3 is
        # first on PATH.
        "spark.pyspark.python": sys.executable,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        # Stateful stages run one task per shuffle partition each batch: on a small
        # machine fewer, larger tasks cost less per batch. Fixed when a checkpoint starts.
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        # A cluster's executors run the generated code (see COMPILE_HUGE_METHODS).
        "spark.executor.defaultJavaOptions": COMPILE_HUGE_METHODS,
        # Commit only the changelog of the state store each batch, not a snapshot.
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        # Without the state's row count in its metrics, a write is one RocksDB put, not a
        # get and a put (nothing here reads numRowsTotal).
        "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
        "spark.sql.streaming.stateStore.providerClass": (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
        ),
        "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(
            settings.s3_endpoint.startswith("https")
        ).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
    }
    access_key, secret_key = settings.s3_credentials()
    if access_key:
        conf["spark.hadoop.fs.s3a.access.key"] = access_key
        conf["spark.hadoop.fs.s3a.secret.key"] = secret_key or ""
    if with_connectors:
        options = submit_options(settings, master, short_lived=short_lived)
        conf.update({SUBMIT_OPTION_CONF[option]: value for option, value in options.items()})
    return conf


# The archive goes in the driver's default options, which Spark puts before its extra
# options: a user's own spark.driver.extraJavaOptions (a truststore, say) keeps working.
SUBMIT_OPTION_CONF = {"jars": "spark.jars", "driver_class_path": "spark.driver.extraClassPath",
                      "driver_java_options": "spark.driver.defaultJavaOptions"}


def scratch_dir(settings: Settings) -> Path:
    """This process's Spark scratch folder (``spark.local.dir``): ``<run dir>/spark-tmp/<pid>``.

    Spark deletes its scratch files at a clean exit only. A driver killed with -9 (a
    crash, the OOM killer) leaves them behind, and each holds a copy of the connector jars
    (about 690 MB, mostly the AWS SDK bundle). So every new session first removes the
    folders of processes that no longer exist."""
    root = settings.run_dir / "spark-tmp"
    root.mkdir(parents=True, exist_ok=True)
    for folder in root.iterdir():
        if folder.name.isdigit() and not psutil.pid_exists(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
    mine = root / str(os.getpid())
    mine.mkdir(exist_ok=True)
    return mine


def build_session(
    app_name: str,
    settings: Settings,
    *,
    master: str | None = "local[2]",
    with_connectors: bool = True,
    extra_conf: dict[str, str] | None = None,
    short_lived: bool = False,
) -> "SparkSession":
    """The session of this process (``getOrCreate``). ``short_lived``: a nightly job whose
    queries run about once (``submit_options``); it matters only to the first session of a
    process, the one that starts the JVM."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    submitted = launched_by_spark_submit()
    if master:  # None under spark-submit: its --master decides
        builder = builder.master(master)
    elif submitted:
        from pyspark import SparkConf

        master = SparkConf().get("spark.master", None)  # what spark-submit was given
    # On a cluster the cluster manager decides where executors keep their scratch files, and
    # the driver must be reachable from other hosts; a local session stays on loopback.
    local = ({"spark.local.dir": str(scratch_dir(settings)), "spark.driver.host": "127.0.0.1",
              "spark.driver.bindAddress": "127.0.0.1"} if is_local(master) else {})
    # Under spark-submit its --jars / --driver-class-path brought the connectors already.
    connectors = with_connectors and not submitted
    conf = {**local, **spark_conf(settings, with_connectors=connectors, master=master, short_lived=short_lived),
            **(extra_conf or {})}
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    # PySpark gives the Python functions of RDDs (foreachPartition ...) the interpreter it
    # read from PYSPARK_PYTHON when the context was made, "python3" when unset, and not
    # spark.pyspark.python: point them at the one this project set there.
    session.sparkContext.pythonExec = conf["spark.pyspark.python"]
    session.sparkContext.setLogLevel("WARN")
    return session


# Job plumbing shared by every spark-submit entry point (speed and batch layers).
DEFAULT_MASTER = SparkKnobs.model_fields["spark_master"].default


def job_master(requested: str | None, settings: Settings) -> str | None:
    """The master a job asked for; under spark-submit None, so its --master decides;
    otherwise VIEWCOUNT_SPARK_MASTER (``settings.spark``, default local[2])."""
    if requested:
        return requested
    if launched_by_spark_submit():
        return None
    return settings.spark.spark_master


def submit_entry(module, argv: list[str] | None = None) -> int:
    """A job module's spark-submit entry: its own arguments, its lines logged as the
    command line logs them (``settings.logs``), user errors on one line."""
    import argparse

    from settings.environment import default_run_dir
    from settings.logs import configure

    parser = argparse.ArgumentParser(prog=module.__file__, description=module.__doc__.splitlines()[0])
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    configure(default_run_dir())
    try:
        return module.run(args)
    except UserError as error:
        log.error(f"error: {error}")
        return error.exit_code
