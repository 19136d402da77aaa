"""The error a user can fix: the command line prints its message on one line and exits
non-zero. Raised by every layer for a wrong input or environment; the drivers' own
failures (a server down, credentials refused) are translated by ``storage.errors``.

``argument_type`` is the command line's edge for the plain parsers of the layers below (a
day, a grace, a watermark delay): their ValueError becomes argparse's usage error."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TypeVar

Parsed = TypeVar("Parsed")


class UserError(Exception):
    """A mistake in input or environment that the user can correct; never a stack trace."""

    exit_code = 2


def argument_type(parse: Callable[[str], Parsed]) -> Callable[[str], Parsed]:
    """``parse`` as an argparse ``type``: its ValueError is the usage error, message kept."""

    @functools.wraps(parse)
    def parse_argument(text: str) -> Parsed:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse_argument
