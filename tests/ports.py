"""Ports on 127.0.0.1 for tests: a free one to listen on, and a URL where nothing listens."""

from __future__ import annotations

from provisioner.sandbox.ports import free_port


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free)."""
    return f"http://127.0.0.1:{free_port()}/hook"
