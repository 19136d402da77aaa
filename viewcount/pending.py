"""Subcommands whose layer is not built yet: they say so and exit non-zero."""

import argparse
import sys

# Whatever arguments are given, the answer is the same.
ACCEPTS_ANY_ARGUMENTS = True
ISSUE_OF = {"reconcile": 5}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    issue = ISSUE_OF.get(args._name)
    print(f"viewcount {args._name}: not built yet (tracked in issue {issue})", file=sys.stderr)
    return 1
