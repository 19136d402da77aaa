"""docs/configuration.md lists every environment variable the code reads, and only
settings/environment.py reads the environment (STYLE: "the environment is read in
settings/environment.py")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from settings import environment as settings_module

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "settings" / "environment.py"
DOC = ROOT / "docs" / "configuration.md"
VARIABLE = re.compile(r"(VIEWCOUNT|AWS|PYSPARK)_[A-Z0-9_]*[A-Z0-9]")  # not a prefix (VIEWCOUNT_RECONCILE_)
PRODUCT = ("counting", "settings", "storage", "spark_runtime", "speed_layer", "batch_layer", "serving", "reconcile",
           "dags", "infra", "producer", "oracle", "demo", "capacity", "viewcount")
# Reads that only pass the caller's own value on to a child process's environment.
CHILD_ENVIRONMENT = {("infra/airflow_home.py", "PATH"), ("infra/airflow_home.py", "PYTHONPATH")}


def variables_read_in_settings() -> set[str]:
    """Every variable name written out in settings/environment.py, and the knobs' variables."""
    named = {node.value for node in ast.walk(ast.parse(SETTINGS.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.fullmatch(node.value)}
    knobs = {variable for knobs in (settings_module.Settings, *settings_module.KNOBS)
             for variable in knobs.variables().values()}
    return named | knobs


def documented(text: str) -> set[str]:
    return set(re.findall(r"`([A-Z0-9_]+)`", text))


def environment_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable or '?') of each read of os.environ / os.getenv in ``source``;
    ``{**os.environ, ...}`` (a child's environment) and writes are not reads."""
    reads = []
    for node in ast.walk(ast.parse(source)):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (owner, node.func.attr) in (("os.environ", "get"), ("os", "getenv"), ("environ", "get")):
                target = node.args[0] if node.args else None
            else:
                continue
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and ast.unparse(node.value) in ("os.environ", "environ"):
            target = node.slice
        elif isinstance(node, ast.Compare) and any(ast.unparse(c) in ("os.environ", "environ")
                                                   for c in node.comparators):
            target = node.left
        else:
            continue
        name = target.value if isinstance(target, ast.Constant) else "?"
        reads.append((node.lineno, name))
    return reads


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


def test_only_settings_reads_the_environment():
    reads = {
        f"{path.relative_to(ROOT)}:{line} reads {name}"
        for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py")) if path != SETTINGS
        for line, name in environment_reads(path.read_text())
        if (str(path.relative_to(ROOT)), name) not in CHILD_ENVIRONMENT
    }
    assert reads == set()


@pytest.mark.parametrize("source", [
    "import os\nmaster = os.environ.get('VIEWCOUNT_SPARK_MASTER', 'local[2]')\n",
    "import os\nmaster = os.getenv('VIEWCOUNT_SPARK_MASTER')\n",
    "import os\nhome = os.environ['VIEWCOUNT_HOME']\n",
    "import os\nunder_submit = 'PYSPARK_GATEWAY_PORT' in os.environ\n",
])
def test_the_environment_check_sees_a_read(source):
    assert environment_reads(source)


def test_a_child_environment_and_writes_are_not_reads():
    source = ("import os\nenv = {**os.environ, 'A': '1'}\nos.environ.setdefault('B', '2')\n"
              "os.environ['C'] = '3'\nos.environ.update(env)\n")
    assert environment_reads(source) == []
