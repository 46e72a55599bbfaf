"""Secret values from `env:NAME` / `file:PATH` references, and their redaction.

Every resolved secret is remembered here so that logs, plan documents, the
state DB and error messages can be scrubbed of it before they leave the
process. A secret rarely leaks verbatim: error text quotes it escaped
(`repr()`, JSON, a bytes repr in a protocol error), URL-encoded (a form or a
query) or base64-encoded, so each registered value is remembered in all
those spellings (see `spellings`).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

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
        # trimmed like a file's: a Kubernetes secret made from a file ends in a newline
        value = value.strip()
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
        forms = {form for form in spellings(value) if len(form) >= 4}
        with _lock:
            _known.update(forms)


def spellings(value: str) -> set[str]:
    """`value` as error text may quote it: as is, escaped, URL-encoded, base64-encoded."""
    raw = value.encode("utf-8")
    forms = {value,
             repr(value)[1:-1],                                   # str repr: \n, \\, \'
             repr(raw)[2:-1],                                     # bytes repr: \xc3\xb6
             json.dumps(value)[1:-1],                             # JSON, \u00f6
             json.dumps(value, ensure_ascii=False)[1:-1],         # JSON, ö kept
             quote(value), quote(value, safe=""),                # URL path, query
             quote_plus(value, safe=""),                          # form body
             base64.b64encode(raw).decode("ascii"),
             base64.urlsafe_b64encode(raw).decode("ascii")}
    return forms


def redact(text: str) -> str:
    if not text:
        return text
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact_tree(value: Any) -> Any:
    """A JSON-like document with every string in it redacted (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_tree(k): redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Scrubs known secrets from every log record that passes a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, ()
        return True
