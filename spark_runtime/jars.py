"""The jars a Spark driver and its executors load beside pyspark's own: the connectors
(Kafka source and sink, S3A) and the project's cell writer (``jvm/cell-writer``: rows to
Cassandra from the executors' JVMs, ``storage.jvm_rows``).

They come from the artifact cache that ``viewcount stack up`` (or ``make artifacts``) fills;
nothing is resolved from a repository at run time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from settings.environment import Settings
from settings.errors import UserError

# The cell writer's Maven project (its POM and Java sources).
CELL_WRITER_SOURCES = Path(__file__).resolve().parents[1] / "jvm" / "cell-writer"


def cell_writer_home(settings: Settings) -> Path:
    """Where the cell writer built from these sources lives: a digest of the POM and the
    Java files names the folder, so a changed source is built again, not used stale."""
    digest = hashlib.sha256()
    for path in sorted([CELL_WRITER_SOURCES / "pom.xml", *(CELL_WRITER_SOURCES / "src").rglob("*.java")]):
        digest.update(f"{path.relative_to(CELL_WRITER_SOURCES)}\n".encode() + path.read_bytes())
    return settings.cache_dir / f"cell-writer-{digest.hexdigest()[:12]}"


def _jars(home: Path, what: str) -> list[Path]:
    jars = sorted((home / "lib").glob("*.jar"))
    if not jars:
        raise UserError(f"no {what} jars in {home}: run `viewcount stack up` (or `make artifacts`) once "
                        "to fetch and build them")
    return jars


def connector_jars(settings: Settings) -> list[Path]:
    return (_jars(settings.spark_connectors_home, "Spark connector")
            + _jars(cell_writer_home(settings), "cell writer"))
