"""Ytel's answer envelope, `{status, count, page, payload, error}` (shared api-notes §2).

Every v3/v4 answer carries it, and `status: false` may come with HTTP 200:
success is the HTTP status *and* the envelope's status.
"""

from __future__ import annotations

from typing import Any

import httpx

from ...secrets import redact


def body_of(response: httpx.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def succeeded(response: httpx.Response, body: dict | None) -> bool:
    return 200 <= response.status_code < 300 and body is not None and body.get("status") is not False


def payload(body: dict | None) -> list:
    items = (body or {}).get("payload")
    if isinstance(items, dict):
        return [items]
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def error_code(response: httpx.Response, body: dict | None) -> int:
    """The envelope's first error code as a number, else the HTTP status."""
    for error in _errors(body):
        try:
            return int(str(error.get("code")).strip())
        except ValueError:
            continue
    return response.status_code


def error_text(response: httpx.Response, body: dict | None) -> str:
    """"code message (moreInfo)" of each envelope error, secrets redacted; the HTTP reason otherwise."""
    parts = []
    for error in _errors(body):
        code, message, more = (str(error.get(k) or "").strip() for k in ("code", "message", "moreInfo"))
        text = " ".join(p for p in (code, message) if p)
        if more and more != message:
            text += f" ({more})"
        if text:
            parts.append(text)
    text = "; ".join(parts) or response.reason_phrase or "no detail given"
    return redact(text)[:400]


def _errors(body: dict | None) -> list[dict[str, Any]]:
    errors = (body or {}).get("error")
    if isinstance(errors, dict):
        errors = [errors]
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
