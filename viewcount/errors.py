"""The CLI's user-facing error; defined in ``storage`` so every layer can raise it."""

from storage.errors import UserError

__all__ = ["UserError"]
