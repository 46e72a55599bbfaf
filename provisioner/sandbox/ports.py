"""A free TCP port on 127.0.0.1, for the local servers the sandbox and the tests start."""

from __future__ import annotations

import socket


def free_port() -> int:
    # the port may be taken again before the caller binds it; callers that
    # start a server retry or fail loudly
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
