"""``viewcount stack up | down | status``."""

from __future__ import annotations

import argparse
import sys

from storage.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status", "init"],
                        help="up: start and wait until healthy; down: stop what up started; "
                             "status: show each server (exit 1 when one is not healthy); "
                             "init: create topics, schema and bucket on servers run elsewhere")
    parser.add_argument("--only", choices=["kafka", "cassandra", "minio", "spark-master", "spark-worker"],
                        help="with down: stop just this server (up starts it again)")
    parser.add_argument("--spark", action="store_true",
                        help="with up: also a Spark standalone master and worker on 127.0.0.1 "
                             "(jobs then take --master spark://127.0.0.1:7077)")


def run(args: argparse.Namespace) -> int:
    from infra import stack

    settings = Settings.from_env()
    if args.spark and args.action != "up":
        print(f"viewcount stack: error: --spark goes with up, not {args.action}", file=sys.stderr)
        return 2
    if args.action == "up":
        stack.up(settings, spark=args.spark)
        return _print_status(settings)
    if args.action == "init":
        stack.init(settings)
        return 0
    if args.action == "down":
        stack.down(settings, only=args.only)
        return 0
    if args.only:
        print(f"viewcount stack: error: --only goes with down, not {args.action}", file=sys.stderr)
        return 2
    return _print_status(settings)


def _print_status(settings: Settings) -> int:
    from infra import stack

    entries = stack.status(settings)
    print(f"{'server':<12} {'state':<10} {'pid':>8}  {'address':<18} log")
    for entry in entries:
        pid = str(entry.pid) if entry.pid else "-"
        print(f"{entry.name:<12} {entry.state:<10} {pid:>8}  {entry.address:<18} {entry.log_path}")
    return 0 if all(entry.healthy for entry in entries) else 1
