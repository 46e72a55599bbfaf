"""Exceptions that cross module boundaries, each carrying a sentence for a person."""

from __future__ import annotations

from .secrets import redact


class ProvisionerError(Exception):
    """Base: str(exc) is a complete sentence safe to show to a user.

    The message is redacted as the exception is made: it is shown on stderr,
    stored in the state DB and the plan, and sent in notifications, and a
    server's error text (which may quote our request) ends up in it.
    """

    def __init__(self, *args):
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(ProvisionerError):
    """A configuration, mapping or source-file mistake: the CLI exits with code 2."""


class TargetError(ProvisionerError):
    """A target refused or failed a request.

    `status` is the HTTP status (None for a transport failure), `retryable`
    says whether the same request may succeed later (429, 5xx, timeouts).
    """

    def __init__(self, message: str, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class AlreadyExists(TargetError):
    """A create was refused because the account exists already (SCIM 409 uniqueness)."""


class NotFound(TargetError):
    """The account (or something it references) does not exist on the target."""
