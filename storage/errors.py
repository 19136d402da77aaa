"""Errors a user can fix: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
    """A mistake in input or environment that the user can correct; never a stack trace."""

    exit_code = 2
