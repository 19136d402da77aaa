"""The one entry point, ``viewcount``: parses arguments and hands off to each layer.

Every subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports (Spark, drivers) happen inside ``run`` so that
``viewcount --help`` and argument errors stay instant.

A user's mistake or an operational failure (a server down, credentials missing, a full
disk, a port taken) is one line on stderr and a non-zero exit; its traceback goes to
``<run dir>/logs/viewcount.log``, and to stderr as well with ``viewcount --debug``.

Logging is configured here, once per command (``settings.logs``): every module's lines go
to stderr as they read, and with their time to ``<run dir>/logs/viewcount.log``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import os
import sys
import traceback

from settings.errors import UserError

log = logging.getLogger(__name__)

# name -> (module, one-line help)
COMMANDS = {
    "stack": ("infra.command", "start, stop or show the local real stack (Kafka, Cassandra, MinIO)"),
    "produce": ("producer.command", "synthetic realistic view events into Kafka, with an oracle"),
    "speed": ("speed_layer.counter", "run the speed-layer counter (Kafka -> Cassandra, invalid -> DLQ)"),
    "archive": ("speed_layer.archiver", "run the speed-layer archiver (Kafka -> raw Parquet on S3)"),
    "batch": ("batch_layer.job", "recompute one day from the archive into a new batch version"),
    "reconcile": ("reconcile.command", "reconcile one day: speed vs batch vs Kafka offsets"),
    "catalog": ("reconcile.catalog_command", "load or show the video catalog billing reads (CSV)"),
    "promote": ("batch_layer.promotion", "make one day's batch version authoritative for serving (or roll back)"),
    "nightly": ("viewcount.nightly", "run the nightly Airflow DAG for a day (or a range), without a scheduler"),
    "airflow": ("viewcount.airflow_command", "run the nightly DAG under Airflow (scheduler, DAG processor, API server), "
                                             "trigger a day"),
    "serve": ("serving.command", "the HTTP API"),
    "demo": ("demo.cycle", "the whole cycle on generated data, end to end"),
    "capacity": ("capacity.plan", "cores, nodes, disk and Kafka partitions for a target load"),
}


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 and a usage line; keep that, but on one line."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    """Only the selected subcommand's module is imported: the others may be heavy."""
    parser = _Parser(prog="viewcount", description="Billing-grade video view counts.")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of a failure too (it is always kept in <run dir>/logs/viewcount.log)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(_module=module, _name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    selected = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(selected)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args._module, "ACCEPTS_ANY_ARGUMENTS", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _configure_logging()
    try:
        return int(args._module.run(args) or 0)
    except UserError as error:
        log.error(f"viewcount {args._name}: error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        log.warning(f"viewcount {args._name}: interrupted")
        return 130
    except BrokenPipeError:  # the reader of the output went away (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except Exception as error:  # noqa: BLE001 - sorted below: operational failure or defect
        return _failed(args._name, argv, error, debug=args.debug)


OPERATIONAL_EXIT = 1


def _configure_logging() -> None:
    """Imported here, not at the top: ``viewcount --help`` and argument errors stay instant."""
    from settings.environment import default_run_dir
    from settings.logs import configure

    configure(default_run_dir())  # Settings.run_dir, which cannot fail to read


def _failed(name: str, argv: list[str], error: Exception, debug: bool) -> int:
    """One line for an operational failure (the traceback kept in the log); a defect keeps
    its traceback on stderr."""
    from storage.errors import explain
    from settings.environment import Settings
    from settings.logs import log_file

    try:
        settings = Settings.from_env()
    except UserError:
        raise error from None
    line = explain(error, settings)
    if line is None:
        raise error
    kept = _keep_traceback(log_file(settings.run_dir), argv, error)
    where = f" (traceback in {kept})" if kept else ""
    log.error(f"viewcount {name}: error: {line}{where}")
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    return OPERATIONAL_EXIT


def _keep_traceback(path, argv: list[str], error: Exception):
    """Append the failure to the log; None when it cannot be written (a full disk, say)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(f"--- {dt.datetime.now(dt.timezone.utc).isoformat()} viewcount {' '.join(argv)}\n")
            out.write("".join(traceback.format_exception(error)))
        return path
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
