"""Subcommands whose layer is not built yet: they say so and exit non-zero."""

import argparse
import sys

ISSUE_OF = {"speed": 3, "archive": 3, "batch": 4, "promote": 4, "serve": 4, "reconcile": 5}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    issue = ISSUE_OF.get(args._name)
    print(f"viewcount {args._name}: not built yet (tracked in issue {issue})", file=sys.stderr)
    return 1
