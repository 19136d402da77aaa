"""Pinned server and connector artifacts, fetched once into the cache.

Java pieces come from Maven Central through a tiny POM per bundle
(``infra/maven/*.pom.xml``) and ``mvn dependency:copy-dependencies``; MinIO is built with
``go install`` at a pinned pseudo-version, the project's cell writer (``jvm/cell-writer``)
with ``mvn package``, and so is promtool (``make test`` only: the alert
rules' tests). Each bundle lands in
``<cache>/<name>-<version>/`` and is marked complete only after a successful fetch, so an
interrupted download is retried, never half-used.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from settings.errors import UserError
from settings.environment import HADOOP_VERSION, SPARK_VERSION, Settings
from spark_runtime.jars import CELL_WRITER_SOURCES, cell_writer_home

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.2"
CASSANDRA_VERSION = "5.0.9"
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# promtool of Prometheus 3 (Go module versions v0.3xx), for the alert rules' tests only.
PROMTOOL_PACKAGE = "github.com/prometheus/prometheus/cmd/promtool"
PROMTOOL_VERSION = "v0.316.0"

MAVEN_DIR = Path(__file__).resolve().parent / "maven"
COMPLETE_MARKER = ".complete"


def require_tool(tool: str, install_hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise UserError(f"'{tool}' is not on PATH: {install_hint}")
    return path


def _run_logged(cmd: list[str], env: dict[str, str], log_path: Path, what: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        result = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise UserError(f"{what} failed (exit {result.returncode}); see {log_path}")


@dataclass(frozen=True)
class MavenBundle:
    """A folder of jars resolved from one POM; Spark/Hadoop jars pyspark ships are excluded."""

    name: str
    version: str
    pom: str
    pom_properties: dict[str, str]
    exclude_artifacts: tuple[str, ...] = field(default=())

    def home(self, cache_dir: Path) -> Path:
        return cache_dir / f"{self.name}-{self.version}"

    def lib(self, cache_dir: Path) -> Path:
        return self.home(cache_dir) / "lib"

    def is_ready(self, cache_dir: Path) -> bool:
        return (self.home(cache_dir) / COMPLETE_MARKER).is_file()

    def jars(self, cache_dir: Path) -> list[Path]:
        return sorted(self.lib(cache_dir).glob("*.jar"))

    def classpath(self, cache_dir: Path) -> str:
        return str(self.lib(cache_dir) / "*")

    def ensure(self, cache_dir: Path) -> Path:
        if self.is_ready(cache_dir):
            return self.lib(cache_dir)
        mvn = require_tool("mvn", "install Maven (apt-get install -y maven)")
        log.info(f"fetching {self.name} {self.version} from Maven Central (once) ...")
        home = self.home(cache_dir)
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.name}-", dir=home.parent))
        cmd = [
            mvn, "-B", "-q", "-f", str(MAVEN_DIR / self.pom),
            "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={staging / 'lib'}",
        ]
        if self.exclude_artifacts:
            cmd.append("-DexcludeArtifactIds=" + ",".join(self.exclude_artifacts))
        env = {**os.environ, **self.pom_properties}
        try:
            _run_logged(cmd, env, cache_dir / "logs" / f"fetch-{self.name}.log",
                        f"fetching {self.name} {self.version} from Maven Central")
            shutil.rmtree(home, ignore_errors=True)
            staging.rename(home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        (home / COMPLETE_MARKER).write_text(f"{self.name} {self.version}\n")
        return self.lib(cache_dir)


@dataclass(frozen=True)
class GoBinary:
    name: str
    module: str
    version: str

    def path(self, cache_dir: Path) -> Path:
        return cache_dir / self.name / self.version / self.name

    def is_ready(self, cache_dir: Path) -> bool:
        return self.path(cache_dir).is_file()

    def ensure(self, cache_dir: Path) -> Path:
        binary = self.path(cache_dir)
        if binary.is_file():
            return binary
        go = require_tool("go", "install Go 1.24 or newer (https://go.dev/doc/install)")
        log.info(f"building {self.name} {self.version} with go install (once; takes minutes) ...")
        binary.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(binary.parent), "GOFLAGS": "-buildvcs=false"}
        _run_logged([go, "install", f"{self.module}@{self.version}"], env,
                    cache_dir / "logs" / f"build-{self.name}.log", f"go install {self.module}")
        return binary


KAFKA = MavenBundle("kafka", KAFKA_VERSION, "kafka.pom.xml",
                    {"VIEWCOUNT_KAFKA_VERSION": KAFKA_VERSION})
CASSANDRA = MavenBundle("cassandra", CASSANDRA_VERSION, "cassandra.pom.xml",
                        {"VIEWCOUNT_CASSANDRA_VERSION": CASSANDRA_VERSION})
SPARK_CONNECTORS = MavenBundle(
    "spark-connectors", f"{SPARK_VERSION}-hadoop{HADOOP_VERSION}", "spark-connectors.pom.xml",
    {"VIEWCOUNT_SPARK_KAFKA_VERSION": SPARK_VERSION, "VIEWCOUNT_HADOOP_VERSION": HADOOP_VERSION},
    exclude_artifacts=(
        "scala-library", "scala-parallel-collections_2.13", "spark-tags_2.13",
        "hadoop-client-api", "hadoop-client-runtime", "slf4j-api", "snappy-java", "lz4-java",
        "jsr305",
    ),
)
@dataclass(frozen=True)
class CellWriterBuild:
    """The project's own jar (``jvm/cell-writer``), built with Maven into the cache with the
    driver jars it needs beyond pyspark's (``spark_runtime.jars.cell_writer_home``)."""

    def is_ready(self, settings: Settings) -> bool:
        return (cell_writer_home(settings) / COMPLETE_MARKER).is_file()

    def ensure(self, settings: Settings) -> Path:
        home = cell_writer_home(settings)
        if self.is_ready(settings):
            return home / "lib"
        mvn = require_tool("mvn", "install Maven (apt-get install -y maven)")
        log.info(f"building the cell writer with Maven (once per change of jvm/cell-writer) into {home} ...")
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".cell-writer-", dir=home.parent))
        cmd = [mvn, "-B", "-q", "-f", str(CELL_WRITER_SOURCES / "pom.xml"), "package",
               "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging / 'lib'}"]
        try:
            _run_logged(cmd, {**os.environ, "VIEWCOUNT_JVM_BUILD": str(staging / "target")},
                        settings.cache_dir / "logs" / "build-cell-writer.log", "building the cell writer")
            for jar in (staging / "target").glob("*.jar"):
                shutil.copy2(jar, staging / "lib" / jar.name)
            shutil.rmtree(staging / "target")
            shutil.rmtree(home, ignore_errors=True)
            staging.rename(home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        (home / COMPLETE_MARKER).write_text("cell writer\n")
        for stale in home.parent.glob("cell-writer-*"):  # builds of earlier sources
            if stale != home:
                shutil.rmtree(stale, ignore_errors=True)
        return home / "lib"


CELL_WRITER = CellWriterBuild()
MINIO = GoBinary("minio", MINIO_MODULE, MINIO_VERSION)
PROMTOOL = GoBinary("promtool", PROMTOOL_PACKAGE, PROMTOOL_VERSION)

ALL_BUNDLES = (KAFKA, CASSANDRA, SPARK_CONNECTORS)


def ensure_all(settings: Settings) -> None:
    """Fetch everything the stack and Spark need, and build the local Spark drivers'
    class-data archive from them; a no-op when the cache is warm."""
    from spark_runtime.class_data import ensure_class_archive

    require_tool("java", "install a Java 17 runtime (apt-get install -y openjdk-17-jre-headless)")
    for bundle in ALL_BUNDLES:
        bundle.ensure(settings.cache_dir)
    CELL_WRITER.ensure(settings)
    MINIO.ensure(settings.cache_dir)
    ensure_class_archive(settings)


def ensure_test_tools(settings: Settings) -> None:
    """What the tests need beyond the stack: promtool (``tests/unit/test_alert_rules.py``)."""
    PROMTOOL.ensure(settings.cache_dir)
