"""How the connector jars reach Spark: on a local master they go on the one JVM's classpath
where they lie (no 690 MB copy per session); on a cluster they are shipped with --jars."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from settings.environment import Settings
from spark_runtime.jars import cell_writer_home
from spark_runtime.session import (COMPILE_HUGE_METHODS, EXIT_WITH_THE_JOB, JVM_OUTPUT_TO_STDERR, LOOPBACK_DRIVER,
                                   spark_conf, submit_options)

# What every driver gets, whatever else it is given.
ALWAYS = f"{JVM_OUTPUT_TO_STDERR} {COMPILE_HUGE_METHODS} {EXIT_WITH_THE_JOB}"


def _settings_with_jars(tmp_path):
    """The product's defaults (the suite itself runs with VIEWCOUNT_QUICK_JIT=all)."""
    from settings.environment import SparkKnobs

    settings = Settings.from_env().replaced(cache_dir=tmp_path, spark=SparkKnobs.defaults())
    lib = settings.spark_connectors_home / "lib"
    lib.mkdir(parents=True)
    for name in ("bundle.jar", "kafka-clients.jar"):
        (lib / name).write_bytes(b"")
    # The project's cell writer and the Java driver, built from jvm/cell-writer.
    writer = cell_writer_home(settings) / "lib"
    writer.mkdir(parents=True)
    for name in ("java-driver-core.jar", "viewcount-cell-writer.jar"):
        (writer / name).write_bytes(b"")
    return settings, [str(lib / "bundle.jar"), str(lib / "kafka-clients.jar"),
                      str(writer / "java-driver-core.jar"), str(writer / "viewcount-cell-writer.jar")]


def test_a_local_master_puts_the_jars_on_the_classpath_and_ships_nothing(tmp_path):
    settings, jars = _settings_with_jars(tmp_path)
    assert submit_options(settings, "local[2]")["driver_class_path"] == os.pathsep.join(jars)
    assert "jars" not in submit_options(settings, "local[2]")
    conf = spark_conf(settings, master="local[2]")
    assert conf["spark.driver.extraClassPath"] == os.pathsep.join(jars)
    assert "spark.jars" not in conf


def test_a_cluster_master_ships_the_jars(tmp_path):
    settings, jars = _settings_with_jars(tmp_path)
    assert submit_options(settings, "spark://10.1.2.3:7077")["jars"] == ",".join(jars)
    assert "driver_class_path" not in submit_options(settings, "spark://10.1.2.3:7077")
    conf = spark_conf(settings, master="yarn")
    assert conf["spark.jars"] == ",".join(jars)
    assert "spark.driver.extraClassPath" not in conf


def test_a_local_driver_maps_the_class_archive_once_it_is_built(tmp_path):
    from spark_runtime.class_data import class_archive

    settings, _ = _settings_with_jars(tmp_path)
    assert "SharedArchiveFile" not in submit_options(settings, "local[2]")["driver_java_options"]
    assert "SharedArchiveFile" not in spark_conf(settings, master="local[2]")["spark.driver.defaultJavaOptions"]
    archive = class_archive(settings)
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    option = f"{ALWAYS} {LOOPBACK_DRIVER} -XX:SharedArchiveFile={archive}"
    assert submit_options(settings, "local[2]")["driver_java_options"] == option
    assert spark_conf(settings, master="local[2]")["spark.driver.defaultJavaOptions"] == option
    assert spark_conf(settings, master="yarn")["spark.driver.defaultJavaOptions"] == ALWAYS


def test_every_jvm_compiles_the_huge_methods_spark_generates(tmp_path):
    """The parse stage's generated method is over HotSpot's 8,000-byte limit: without the
    flag the JVM interprets it (docs/benchmarks.md), on a local master and on a cluster."""
    settings, _ = _settings_with_jars(tmp_path)
    for master in ("local[2]", "spark://10.1.2.3:7077", "yarn"):
        conf = spark_conf(settings, master=master)
        assert COMPILE_HUGE_METHODS in conf["spark.driver.defaultJavaOptions"].split()
        assert COMPILE_HUGE_METHODS in conf["spark.executor.defaultJavaOptions"].split()
    assert COMPILE_HUGE_METHODS in spark_conf(settings, master="local[2]", short_lived=True)[
        "spark.driver.defaultJavaOptions"].split()


def test_the_class_archive_belongs_to_one_set_of_jars(tmp_path):
    from spark_runtime.class_data import class_archive

    settings, jars = _settings_with_jars(tmp_path)
    before = class_archive(settings)
    assert class_archive(settings) == before
    Path(jars[0]).write_bytes(b"another version")
    assert class_archive(settings) != before


def test_a_short_lived_local_driver_compiles_with_the_quick_compiler_only_unless_told_otherwise(tmp_path):
    from settings.environment import SparkKnobs
    from spark_runtime.session import QUICK_JIT

    settings, _ = _settings_with_jars(tmp_path)
    # a local driver: loopback only (the cluster's drivers below must be reachable)
    local, local_quick = f"{ALWAYS} {LOOPBACK_DRIVER}", f"{ALWAYS} {LOOPBACK_DRIVER} {QUICK_JIT}"
    assert submit_options(settings, "local[2]", short_lived=True)["driver_java_options"] == local_quick
    assert spark_conf(settings, master="local[2]", short_lived=True)["spark.driver.defaultJavaOptions"] == local_quick
    # streaming jobs and cluster masters: both compilers
    assert submit_options(settings, "local[2]")["driver_java_options"] == local
    assert submit_options(settings, "yarn", short_lived=True)["driver_java_options"] == ALWAYS
    both = settings.replaced(spark=SparkKnobs(quick_jit="none"))
    assert submit_options(both, "local[2]", short_lived=True)["driver_java_options"] == local
    # VIEWCOUNT_QUICK_JIT=all: streaming jobs too (never a cluster's driver)
    everywhere = settings.replaced(spark=SparkKnobs(quick_jit="all"))
    assert submit_options(everywhere, "local[2]")["driver_java_options"] == local_quick
    assert submit_options(everywhere, "yarn")["driver_java_options"] == ALWAYS


@pytest.mark.parametrize(("variable", "read"), [
    ("true", "short-lived"), ("False", "none"), ("all", "all"), (" Short-Lived ", "short-lived"), ("none", "none")])
def test_the_quick_compiler_setting_reads_its_words_and_the_old_booleans(monkeypatch, variable, read):
    from settings.environment import SparkKnobs

    monkeypatch.setenv("VIEWCOUNT_QUICK_JIT", variable)
    assert SparkKnobs.from_env().quick_jit == read


def test_an_unknown_quick_compiler_setting_is_a_one_line_error(monkeypatch):
    from settings.errors import UserError
    from settings.environment import SparkKnobs

    monkeypatch.setenv("VIEWCOUNT_QUICK_JIT", "sometimes")
    with pytest.raises(UserError, match="VIEWCOUNT_QUICK_JIT must be one of"):
        SparkKnobs.from_env()


def test_the_quick_compiler_keeps_a_code_cache_a_driver_does_not_fill():
    """C1 alone defaults to a 48 MB code cache; a reconcile filled it, the JVM stopped
    compiling and printed so on the command's standard output (its ``--json`` result)."""
    import subprocess

    from spark_runtime.session import JVM_OUTPUT_TO_STDERR, QUICK_JIT

    flags = subprocess.run(["java", *QUICK_JIT.split(), "-XX:+PrintFlagsFinal", "-version"],
                           capture_output=True, text=True, check=True).stdout
    size = next(int(line.split("=")[1].split()[0]) for line in flags.splitlines()
                if line.split()[1:2] == ["ReservedCodeCacheSize"])
    assert size >= 240 * 1024 * 1024
    # The JVM's own output goes to standard error only: its unified log's warnings (large
    # pages asked for where none are configured) and its console prints (the code cache).
    noisy = ["-XX:+UseLargePages", "-XX:+PrintCodeCache", "-version"]
    plain = subprocess.run(["java", *noisy], capture_output=True, text=True)
    assert "nmethods" in plain.stdout  # where the JVM writes by default
    kept = subprocess.run(["java", *JVM_OUTPUT_TO_STDERR.split(), *noisy], capture_output=True, text=True)
    assert kept.returncode == 0 and kept.stdout == "", kept.stdout
    assert "nmethods" in kept.stderr
    assert ("[warning][pagesize]" in plain.stdout) == ("[warning][pagesize]" in kept.stderr)


def test_the_cell_writer_is_built_again_when_its_sources_change(tmp_path, monkeypatch):
    """Its cache folder is named by a digest of its POM and Java sources: an edited source
    names another folder (built by ``make artifacts``), never the stale jar."""
    import shutil

    import spark_runtime.jars as jars

    settings = Settings.defaults().replaced(cache_dir=tmp_path)
    sources = tmp_path / "cell-writer"
    shutil.copytree(jars.CELL_WRITER_SOURCES, sources)
    monkeypatch.setattr(jars, "CELL_WRITER_SOURCES", sources)
    before = cell_writer_home(settings)
    assert before == jars.cell_writer_home(settings)
    java = next((sources / "src").rglob("*.java"))
    java.write_text(java.read_text() + "\n// changed\n")
    assert cell_writer_home(settings) != before
