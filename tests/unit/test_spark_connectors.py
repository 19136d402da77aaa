"""How the connector jars reach Spark: on a local master they go on the one JVM's classpath
where they lie (no 690 MB copy per session); on a cluster they are shipped with --jars."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from storage.settings import Settings
from storage.spark import spark_conf, submit_options


def _settings_with_jars(tmp_path):
    settings = replace(Settings.from_env(), cache_dir=tmp_path)
    lib = settings.spark_connectors_home / "lib"
    lib.mkdir(parents=True)
    for name in ("bundle.jar", "kafka-clients.jar"):
        (lib / name).write_bytes(b"")
    return settings, [str(lib / "bundle.jar"), str(lib / "kafka-clients.jar")]


def test_a_local_master_puts_the_jars_on_the_classpath_and_ships_nothing(tmp_path):
    settings, jars = _settings_with_jars(tmp_path)
    assert submit_options(settings, "local[2]") == {"driver_class_path": os.pathsep.join(jars)}
    conf = spark_conf(settings, master="local[2]")
    assert conf["spark.driver.extraClassPath"] == os.pathsep.join(jars)
    assert "spark.jars" not in conf


def test_a_cluster_master_ships_the_jars(tmp_path):
    settings, jars = _settings_with_jars(tmp_path)
    assert submit_options(settings, "spark://10.1.2.3:7077") == {"jars": ",".join(jars)}
    conf = spark_conf(settings, master="yarn")
    assert conf["spark.jars"] == ",".join(jars)
    assert "spark.driver.extraClassPath" not in conf


def test_a_local_driver_maps_the_class_archive_once_it_is_built(tmp_path):
    from storage.spark_classes import class_archive

    settings, _ = _settings_with_jars(tmp_path)
    assert "driver_java_options" not in submit_options(settings, "local[2]")
    assert "spark.driver.defaultJavaOptions" not in spark_conf(settings, master="local[2]")
    archive = class_archive(settings)
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    option = f"-XX:SharedArchiveFile={archive}"
    assert submit_options(settings, "local[2]")["driver_java_options"] == option
    assert spark_conf(settings, master="local[2]")["spark.driver.defaultJavaOptions"] == option
    assert "spark.driver.defaultJavaOptions" not in spark_conf(settings, master="yarn")


def test_the_class_archive_belongs_to_one_set_of_jars(tmp_path):
    from storage.spark_classes import class_archive

    settings, jars = _settings_with_jars(tmp_path)
    before = class_archive(settings)
    assert class_archive(settings) == before
    Path(jars[0]).write_bytes(b"another version")
    assert class_archive(settings) != before


def test_a_short_lived_local_driver_compiles_with_the_quick_compiler_only_unless_told_otherwise(tmp_path):
    from storage.settings import SparkKnobs
    from storage.spark import QUICK_JIT

    settings, _ = _settings_with_jars(tmp_path)
    assert submit_options(settings, "local[2]", short_lived=True)["driver_java_options"] == QUICK_JIT
    assert spark_conf(settings, master="local[2]", short_lived=True)["spark.driver.defaultJavaOptions"] == QUICK_JIT
    assert "driver_java_options" not in submit_options(settings, "local[2]")  # streaming jobs: both compilers
    assert "driver_java_options" not in submit_options(settings, "yarn", short_lived=True)
    both = replace(settings, spark=SparkKnobs(quick_jit=False))
    assert "driver_java_options" not in submit_options(both, "local[2]", short_lived=True)
