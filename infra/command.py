"""``viewcount stack up | down | status``."""

from __future__ import annotations

import argparse

from settings.environment import Settings, stack_node_count
from settings.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status", "init"],
                        help="up: start and wait until healthy; down: stop what up started; "
                             "status: show each server (exit 1 when one is not healthy); "
                             "init: create topics, schema and bucket on servers run elsewhere")
    parser.add_argument("--only", metavar="SERVER",
                        help="with down: stop just this server, as status names it (kafka, cassandra-2, "
                             "minio ...; up starts it again)")
    parser.add_argument("--nodes", type=_node_count, metavar="N",
                        help="with up: run N nodes each of Kafka and Cassandra on 127.0.0.1, 127.0.0.2 ... "
                             "(replication 3, writes acknowledged by 2; kept for later commands in "
                             "<run dir>/stack.env; 1: the single-node stack); refused where another count "
                             "wrote the run folder's data")
    parser.add_argument("--spark", action="store_true",
                        help="with up: also a Spark standalone master and worker on 127.0.0.1 "
                             "(jobs then take --master spark://127.0.0.1:7077)")


def _node_count(text: str) -> int:
    try:
        return stack_node_count(text)
    except ValueError as error:  # argparse shows an ArgumentTypeError's own words
        raise argparse.ArgumentTypeError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    from infra import stack
    from infra.servers import all_servers

    settings = Settings.from_env()
    for flag, given in (("--spark", args.spark), ("--nodes", args.nodes is not None)):
        if given and args.action != "up":
            raise UserError(f"{flag} goes with up, not {args.action}")
    if args.action == "up":
        if args.nodes is not None and stack.set_nodes(settings, args.nodes):
            settings = Settings.from_env()  # the run folder's new stack.env
        stack.up(settings, spark=args.spark)
        return _print_status(settings)
    if args.action == "init":
        stack.init(settings)
        return 0
    if args.action == "down":
        names = [server.name for server in all_servers(settings, spark=True)]
        if args.only is not None and args.only not in names:
            raise UserError(f"--only: no server {args.only!r} in this stack (one of {', '.join(names)})")
        stack.down(settings, only=args.only)
        return 0
    if args.only:
        raise UserError(f"--only goes with down, not {args.action}")
    return _print_status(settings)


def _print_status(settings: Settings) -> int:
    from infra import stack

    entries = stack.status(settings)
    print(f"{'server':<12} {'state':<10} {'pid':>8}  {'address':<18} log")
    for entry in entries:
        pid = str(entry.pid) if entry.pid else "-"
        print(f"{entry.name:<12} {entry.state:<10} {pid:>8}  {entry.address:<18} {entry.log_path}")
    return 0 if all(entry.healthy for entry in entries) else 1
