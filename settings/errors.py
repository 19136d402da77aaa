"""The error a user can fix: the command line prints its message on one line and exits
non-zero. Raised by every layer for a wrong input or environment; the drivers' own
failures (a server down, credentials refused) are translated by ``storage.errors``."""


class UserError(Exception):
    """A mistake in input or environment that the user can correct; never a stack trace."""

    exit_code = 2
