"""The connector jars (Kafka source and sink, S3A) a Spark driver and its executors load.

They come from the artifact cache that ``viewcount stack up`` (or ``make artifacts``) fills;
nothing is resolved from a repository at run time.
"""

from __future__ import annotations

from pathlib import Path

from settings.environment import Settings
from settings.errors import UserError


def connector_jars(settings: Settings) -> list[Path]:
    jars = sorted((settings.spark_connectors_home / "lib").glob("*.jar"))
    if not jars:
        raise UserError(
            f"no Spark connector jars in {settings.spark_connectors_home}: "
            "run `viewcount stack up` (or `make artifacts`) once to fetch them"
        )
    return jars
