"""Logs are logs: every module logs, the edges configure (``settings.logs``). On the
terminal a line reads as it always did; in ``<run dir>/logs/viewcount.log`` it has its time."""

from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from settings.logs import LOGGERS, PACKAGES, configure, log_file
from viewcount import cli

ROOT = Path(__file__).resolve().parents[2]
# Writes to stderr that are not log lines: the per-batch progress line of the streaming jobs
# (one a second; kept out of the log file) and the traceback `viewcount --debug` asks for.
NOT_LOGS = {"speed_layer/progress.py", "viewcount/cli.py"}
FILE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \d+ (INFO|WARNING|ERROR) ([\w.]+): (.*)$")


@pytest.fixture(autouse=True)
def project_loggers():
    """Each test starts from, and leaves, the project's loggers as they were."""
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level) for name in LOGGERS}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)


def test_a_line_reads_as_before_on_the_terminal_and_has_its_time_in_the_log(tmp_path, capsys):
    configure(tmp_path)
    logging.getLogger("batch_layer.job").info("batch 2026-11-20: completeness ok")
    logging.getLogger("speed_layer.jobs").warning("restarting from the checkpoints in 2 s")

    assert capsys.readouterr().err == "batch 2026-11-20: completeness ok\nrestarting from the checkpoints in 2 s\n"
    lines = [FILE_LINE.match(line) for line in log_file(tmp_path).read_text().splitlines()]
    assert [line.groups() for line in lines] == [
        ("INFO", "batch_layer.job", "batch 2026-11-20: completeness ok"),
        ("WARNING", "speed_layer.jobs", "restarting from the checkpoints in 2 s")]


def test_a_job_run_as_a_file_logs_as_its_package_would(tmp_path):
    """spark-submit runs batch_layer/job.py as a file: its module logs as ``__main__``."""
    script = ("import logging, pathlib, sys\nfrom settings.logs import configure\n"
              f"configure(pathlib.Path({str(tmp_path)!r}))\n"
              "logging.getLogger(__name__).info('batch 2026-11-06: rewrote version 1: 3 cells')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)

    assert result.returncode == 0 and result.stderr == "batch 2026-11-06: rewrote version 1: 3 cells\n", result.stderr
    assert log_file(tmp_path).read_text().rstrip().endswith("INFO __main__: batch 2026-11-06: rewrote version 1: 3 cells")


def test_configuring_again_replaces_instead_of_doubling(tmp_path, capsys):
    configure(tmp_path / "first")
    configure(tmp_path / "second")
    logging.getLogger("demo.cycle").info("[1/8] stack up")

    assert capsys.readouterr().err == "[1/8] stack up\n"
    assert not log_file(tmp_path / "first").exists()
    assert log_file(tmp_path / "second").read_text().count("[1/8] stack up") == 1


def test_a_log_file_that_cannot_be_written_leaves_the_terminal_alone(tmp_path, capsys):
    blocked = tmp_path / "run"
    blocked.write_text("a file where the run folder should be")
    configure(blocked)
    logging.getLogger("infra.stack").info("stack up in 1.0 s")

    assert capsys.readouterr().err == "stack up in 1.0 s\n"


def test_other_libraries_keep_their_own_quiet(tmp_path, capsys):
    configure(tmp_path)
    logging.getLogger("cassandra.policies").info("Using datacenter 'datacenter1'")
    logging.getLogger("py4j.clientserver").info("Closing down clientserver connection")

    assert capsys.readouterr().err == ""
    assert not log_file(tmp_path).exists()


def test_the_command_lines_error_is_one_line_on_the_terminal_and_kept_in_the_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIEWCOUNT_HOME", str(tmp_path))
    assert cli.main(["stack", "status", "--only", "kafka-1"]) == 2

    assert capsys.readouterr().err == "viewcount stack: error: --only goes with down, not status\n"
    [line] = [FILE_LINE.match(line) for line in log_file(tmp_path).read_text().splitlines()]
    assert line.groups() == ("ERROR", "viewcount.cli", "viewcount stack: error: --only goes with down, not status")


def test_every_package_of_the_project_is_configured():
    included = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(PACKAGES) == sorted(pattern.rstrip("*") for pattern in included)


def stderr_writes(source: str) -> list[int]:
    """Lines of ``print(..., file=sys.stderr)`` and of ``sys.stderr.write(...)``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        target = next((keyword.value for keyword in node.keywords if keyword.arg == "file"), None)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "write":
            target = node.func.value
        if target is not None and ast.unparse(target) == "sys.stderr":
            found.append(node.lineno)
    return found


def test_modules_log_instead_of_printing_to_stderr():
    sources = [path for package in (*PACKAGES, "dags") for path in sorted((ROOT / package).rglob("*.py"))]
    assert not {f"{path.relative_to(ROOT)}:{line}" for path in sources
                if str(path.relative_to(ROOT)) not in NOT_LOGS for line in stderr_writes(path.read_text())}


def test_the_stderr_check_sees_a_print():
    assert stderr_writes('import sys\nprint("stopping ...", file=sys.stderr, flush=True)\n') == [2]
    assert stderr_writes("import sys\nsys.stderr.write('x\\n')\n") == [2]
    assert stderr_writes('log.info("stopping ...")\nprint(json.dumps(summary))\n') == []
