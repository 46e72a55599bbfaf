"""Secret values from `env:NAME` / `file:PATH` references, and their redaction.

Every resolved secret is remembered here so that logs, plan documents, the
state DB and error messages can be scrubbed of it before they leave the
process.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

REDACTED = "***"
_known: set[str] = set()
_lock = threading.Lock()


class Secret:
    """A secret value that never prints itself."""

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: str):
        self._value = value
        self.reference = reference  # "env:NAME" or "file:PATH": safe to show
        register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"

    __str__ = __repr__


class SecretReferenceError(ValueError):
    """The reference is malformed or points at nothing; the message says which."""


def resolve(reference: str, base_dir: Path | None = None) -> Secret:
    """Turn "env:NAME" or "file:PATH" into a Secret; anything else is refused."""
    if not isinstance(reference, str):
        raise SecretReferenceError("must be a string of the form \"env:NAME\" or \"file:PATH\"")
    kind, _, name = reference.partition(":")
    if kind == "env" and name:
        value = os.environ.get(name)
        if value is None:
            raise SecretReferenceError(f"environment variable {name} is not set")
        if value == "":
            raise SecretReferenceError(f"environment variable {name} is empty")
        return Secret(value, reference)
    if kind == "file" and name:
        path = Path(name).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretReferenceError(f"cannot read secret file {path}: {exc.strerror}") from None
        if value == "":
            raise SecretReferenceError(f"secret file {path} is empty")
        return Secret(value, reference)
    raise SecretReferenceError(
        "secrets are never written in the config: use \"env:NAME\" or \"file:PATH\"")


def register(value: str) -> None:
    # very short values would redact innocent text everywhere; they are still
    # never written on purpose, this is only the safety net
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Scrubs known secrets from every log record that passes a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, ()
        return True
