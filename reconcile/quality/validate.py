"""Run a suite on a DataFrame, say what failed, and publish Data Docs.

Each run uses a Great Expectations file context in a fresh temporary folder (two nightly
runs never share state); its Data Docs site is copied to S3 beside the day's report,
``s3://<bucket>/reports/day=D/data_docs/``. A result is *blocking* when an expectation
marked critical failed.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx

from storage.settings import Settings

DOCS_SITE = "local_site"


@dataclass
class SuiteResult:
    suite: str
    success: bool
    evaluated: int
    failed: list[str] = field(default_factory=list)
    critical_failed: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return bool(self.critical_failed)

    def line(self) -> str:
        verdict = "ok" if self.success else ("BLOCKING" if self.blocking else "warnings")
        failed = f": failed {', '.join(self.failed)}" if self.failed else ""
        return f"{self.suite}: {verdict} ({self.evaluated} expectations){failed}"


def _describe(result) -> str:
    config = result.expectation_config
    column = config.kwargs.get("column") or config.kwargs.get("column_list") or (
        f"{config.kwargs.get('column_A')} vs {config.kwargs.get('column_B')}")
    unexpected = result.result.get("unexpected_count")
    return f"{config.type}({column})" + (f" [{unexpected} unexpected]" if unexpected else "")


class QualityRun:
    """One context for the suites of one day; ``publish`` uploads its Data Docs."""

    def __init__(self, day: dt.date):
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.day = day
        self.folder = Path(tempfile.mkdtemp(prefix=f"viewcount-gx-{day}-"))
        self.context = gx.get_context(mode="file", project_root_dir=str(self.folder))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.results: list[SuiteResult] = []

    def _batch_definition(self, frame: Any, name: str):
        is_spark = type(frame).__module__.startswith("pyspark")
        source_name = "spark" if is_spark else "pandas"
        sources = self.context.data_sources
        try:
            source = sources.get(source_name)
        except (KeyError, ValueError):
            source = sources.add_spark(name=source_name) if is_spark else sources.add_pandas(name=source_name)
        return source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name)

    def validate(self, frame: Any, suite: gx.ExpectationSuite) -> SuiteResult:
        # A suite may run more than once per day (e.g. on two inputs): names stay unique.
        name = f"{suite.name}-{len(self.results) + 1}"
        suite.name = name
        suite = self.context.suites.add(suite)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=self._batch_definition(frame, name), suite=suite))
        checkpoint = self.context.checkpoints.add(gx.Checkpoint(
            name=name, validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")]))
        run = checkpoint.run(batch_parameters={"dataframe": frame})
        outcomes = [outcome for validation in run.run_results.values() for outcome in validation.results]
        failed = [outcome for outcome in outcomes if not outcome.success]
        result = SuiteResult(
            suite=suite.name, success=run.success, evaluated=len(outcomes),
            failed=[_describe(outcome) for outcome in failed],
            critical_failed=[_describe(outcome) for outcome in failed
                             if (outcome.expectation_config.meta or {}).get("critical")],
        )
        self.results.append(result)
        return result

    @property
    def docs_folder(self) -> Path:
        return self.folder / "gx" / "uncommitted" / "data_docs" / DOCS_SITE

    def publish(self, settings: Settings) -> str:
        """Copy the Data Docs site to S3; returns the URI of its index page."""
        from storage.s3 import upload_folder

        prefix = f"reports/day={self.day}/data_docs"
        upload_folder(settings, self.docs_folder, prefix)
        return f"s3://{settings.s3_bucket}/{prefix}/index.html"
