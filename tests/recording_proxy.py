"""A recording HTTP proxy on 127.0.0.1 in front of a real server (scim2-server, an emulator),
so a test can count what a CLI run sent and stop a run with a request in flight.

    with RecordingProxy(server.base_url, hold=lambda seen: seen.method == "POST") as proxy:
        ... configure the target with proxy.base_url ...
        proxy.held.wait(30)       # the first POST reached the server; its answer is withheld
        proxy.sent("POST", r"/Users\\Z")

A held request is forwarded (the server acts on it) but never answered: the
client sees no result, exactly as when it is killed between sending and
recording. `release()` (also on exit) lets held handler threads end.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx

from provisioner.testing.proxy import HOP_BY_HOP


@dataclass
class Exchange:
    method: str
    path: str          # without the query
    body: bytes
    status: int | None = None   # the server's answer (also for a held request)
    client: tuple = ()          # the client's (host, port): one per connection
    started: float = 0.0        # time.monotonic() when the request arrived
    finished: float = 0.0       # ... and when its answer was sent (0.0: held, never answered)

    def json(self) -> Any:
        import json
        return json.loads(self.body or b"null")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # a client killed mid-request (a SIGKILLed worker) is what some tests and benches do
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class RecordingProxy:
    def __init__(self, upstream: str, hold: Callable[[Exchange], bool] | None = None, latency: float = 0.0):
        parts = urlsplit(upstream)
        self.upstream_origin = f"{parts.scheme}://{parts.netloc}"
        self.upstream_path = parts.path.rstrip("/")
        self.hold = hold                     # which request's answer to withhold (once)
        self.exchanges: list[Exchange] = []
        self.held = threading.Event()        # set when a request has been held
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                exchange = Exchange(self.command, urlsplit(self.path).path, body,
                                    client=tuple(self.client_address), started=time.monotonic())
                with outer._lock:
                    outer.exchanges.append(exchange)
                    holding = outer.hold is not None and not outer.held.is_set() and outer.hold(exchange)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = outer._client.request(self.command, outer.upstream_origin + self.path,
                                               headers=headers, content=body)
                exchange.status = answer.status_code
                if latency:   # a distant server: each answer takes this much longer
                    time.sleep(latency)
                if holding:
                    outer.held.set()
                    outer._release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                try:
                    self.end_headers()
                    self.wfile.write(answer.content)
                except (BrokenPipeError, ConnectionResetError):   # the client was killed meanwhile
                    self.close_connection = True
                    return
                exchange.finished = time.monotonic()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.upstream_path}"

    def sent(self, method: str, path_pattern: str, since: int = 0) -> list[Exchange]:
        """The requests from index `since` on whose method and path (re.search) match."""
        with self._lock:
            return [e for e in self.exchanges[since:]
                    if e.method == method and re.search(path_pattern, e.path)]

    def mark(self) -> int:
        """The number of requests seen so far, for `sent(..., since=mark)`."""
        with self._lock:
            return len(self.exchanges)

    def release(self) -> None:
        self._release.set()

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._client.close()
