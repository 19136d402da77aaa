"""docs/configuration.md lists every environment variable the code reads (that only the
settings room reads the environment is held by tests/unit/test_architecture.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from settings import environment as settings_module

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "settings" / "environment.py"
DOC = ROOT / "docs" / "configuration.md"
VARIABLE = re.compile(r"(VIEWCOUNT|AWS|PYSPARK)_[A-Z0-9_]*[A-Z0-9]")  # not a prefix (VIEWCOUNT_RECONCILE_)


def variables_read_in_settings() -> set[str]:
    """Every variable name written out in settings/environment.py, and the knobs' variables."""
    named = {node.value for node in ast.walk(ast.parse(SETTINGS.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.fullmatch(node.value)}
    knobs = {variable for knobs in (settings_module.Settings, *settings_module.KNOBS)
             for variable in knobs.variables().values()}
    return named | knobs


def documented(text: str) -> set[str]:
    return set(re.findall(r"`([A-Z0-9_]+)`", text))


def test_every_variable_read_in_settings_is_documented():
    assert variables_read_in_settings() - documented(DOC.read_text()) == set()


def test_the_doc_check_sees_a_missing_variable():
    assert "VIEWCOUNT_VIEWS_PARTITIONS" in variables_read_in_settings()
    text = DOC.read_text().replace("`VIEWCOUNT_VIEWS_PARTITIONS`", "the views topic's partitions")
    assert "VIEWCOUNT_VIEWS_PARTITIONS" in variables_read_in_settings() - documented(text)


def test_every_knob_class_is_listed():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    assert set(subclasses(settings_module._Knobs)) == set(settings_module.KNOBS)
