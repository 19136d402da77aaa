"""Run a suite on a DataFrame, say what failed, and publish Data Docs.

Each run uses a Great Expectations file context in a fresh temporary folder (two nightly
runs never share state). Its Data Docs site is copied to S3 beside the day's report, one
site per stage (``s3://<bucket>/reports/day=D/data_docs/<stage>/``: archive, batch,
reconciliation; the nightly tasks may run on different workers), under one
``data_docs/index.html`` that links the stages published so far. A result is *blocking*
when an expectation marked critical failed.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx

from settings.environment import Settings

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

    def __init__(self, day: dt.date, stage: str = "checks"):
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.day = day
        self.stage = stage
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
        """Replace the stage's Data Docs site in S3 with this run's, refresh the day's index of
        stages; returns the URI of the stage's index page."""
        from storage.s3 import client, delete_prefix, upload_folder

        root = f"reports/day={self.day}/data_docs"
        delete_prefix(settings, f"{root}/{self.stage}/")  # no page of an earlier run stays behind
        upload_folder(settings, self.docs_folder, f"{root}/{self.stage}")
        s3 = client(settings)
        listed = s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=f"{root}/", Delimiter="/")
        stages = sorted(entry["Prefix"][len(root) + 1:].rstrip("/") for entry in listed.get("CommonPrefixes", []))
        s3.put_object(Bucket=settings.s3_bucket, Key=f"{root}/index.html", Body=stages_index(self.day, stages),
                      ContentType="text/html; charset=utf-8")
        return f"s3://{settings.s3_bucket}/{root}/{self.stage}/index.html"


def stages_index(day: dt.date, stages: list[str]) -> bytes:
    """The day's Data Docs entry page: a link to each stage's site."""
    from html import escape

    items = "".join(f'<li><a href="{escape(stage)}/index.html">{escape(stage)}</a></li>' for stage in stages)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Data Docs {day}</title></head>"
            f"<body><h1>Data quality of {day}</h1><ul>{items}</ul></body></html>").encode()
