"""Where the project's log lines go: one configuration, made at the edge.

Every module logs through ``log = logging.getLogger(__name__)`` and never configures
logging itself. The edges, the ``viewcount`` command and a job's spark-submit entry, call
``configure(run_dir)`` once: each line goes to stderr as the bare message (what a user
reads at a terminal, as plain as a print) and is appended, with its UTC time, process,
level and logger, to ``<run dir>/logs/viewcount.log``. Where a host configures logging
itself (an Airflow task, pytest's caplog), nothing here runs and the records go to its
handlers.

Only the project's own packages are configured: third-party libraries keep Python's
defaults (their INFO chatter stays silent, as it always was).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

# The project's top-level packages (pyproject.toml's package list); their loggers, and every
# logger under them, write to the terminal and the log file.
PACKAGES = ("viewcount", "counting", "settings", "storage", "spark_runtime", "speed_layer", "batch_layer",
            "serving", "reconcile", "infra", "producer", "oracle", "demo", "capacity")
# A job module spark-submit runs as a file (batch_layer/job.py, speed_layer/counter.py ...)
# logs under this name, not its package's.
SCRIPT = "__main__"
LOGGERS = (*PACKAGES, SCRIPT)
LOG_FILE = Path("logs") / "viewcount.log"
FILE_FORMAT = "%(asctime)s.%(msecs)03dZ %(process)d %(levelname)s %(name)s: %(message)s"


def log_file(run_dir: Path) -> Path:
    return run_dir / LOG_FILE


class _Terminal(logging.StreamHandler):
    """The bare message on whatever ``sys.stderr`` is when a line is written (a test's
    capture, a redirection made after start-up)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr


class _LogFile(logging.FileHandler):
    """Appends to the run folder's log, opened at its first line. A log that cannot be
    written (a full disk, a read-only run folder) loses its lines, never the command's."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        formatter = logging.Formatter(FILE_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        self.setFormatter(formatter)

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        except OSError:
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's API
        pass


def configure(run_dir: Path, level: int = logging.INFO) -> None:
    """The terminal and ``<run dir>/logs/viewcount.log`` for every logger of the project.
    Called again (a uvicorn worker's app factory in the command's own process, tests that
    call the command line many times), it replaces what it set before instead of adding a
    second copy."""
    handlers = [_Terminal(), _LogFile(log_file(run_dir))]
    replaced = set()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for previous in [handler for handler in logger.handlers if isinstance(handler, (_Terminal, _LogFile))]:
            logger.removeHandler(previous)
            replaced.add(previous)
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(level)
    for previous in replaced:
        previous.close()
