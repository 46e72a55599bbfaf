"""Ports on 127.0.0.1 for tests: a free one to listen on, and a URL where nothing listens."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free)."""
    return f"http://127.0.0.1:{free_port()}/hook"
