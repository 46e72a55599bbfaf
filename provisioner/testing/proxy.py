"""A proxy on 127.0.0.1 in front of a connector's emulator: it records every request, answers
the next N itself with an injected 429 or 5xx, and can withhold one answer (a request in
flight when the client is killed). Being in front of any server, it gives every connector
the same fault knobs, whatever its emulator offers.

    with FaultProxy(server.base_url) as proxy:
        proxy.fail_next(1, 429, retry_after=1)
        ... the target, configured with proxy.base_url, sends a request ...
        proxy.exchanges[-2].status == 429
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx

# not forwarded: they describe one hop, or a body httpx has already decoded
HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
        "proxy-connection", "te", "trailer", "upgrade"}


@dataclass
class Exchange:
    method: str
    path: str                   # without the query
    body: bytes
    status: int | None = None   # the answer's status (the server's, or the injected one)
    injected: bool = False      # answered by the proxy, never forwarded
    started: float = 0.0        # time.monotonic() when the request arrived
    # time.monotonic() just before its answer was sent (0.0: withheld): the client cannot have
    # read the answer earlier, so a retry's `started` minus this is at most the client's wait
    answered: float = 0.0


@dataclass
class _Fault:
    count: int
    status: int
    headers: dict[str, str]


class FaultProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path.rstrip("/")
        self.exchanges: list[Exchange] = []
        self.hold: Callable[[Exchange], bool] | None = None   # whose answer to withhold (once)
        self.held = threading.Event()
        self._release = threading.Event()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=60)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name="conformance-proxy")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self._path}"

    def fail_next(self, count: int, status: int, *, retry_after: float | None = None) -> None:
        """Answer the next `count` requests with `status` (and Retry-After, when given)."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        with self._lock:
            self._faults.append(_Fault(count, status, headers))

    def mark(self) -> int:
        with self._lock:
            return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges[mark:])

    def sent(self, method: str, path_pattern: str, since: int = 0) -> list[Exchange]:
        """The requests from index `since` on with this method whose path matches (re.search)."""
        return [e for e in self.since(since) if e.method == method and re.search(path_pattern, e.path)]

    def _next_fault(self) -> _Fault | None:
        while self._faults and self._faults[0].count <= 0:
            self._faults.pop(0)
        if not self._faults:
            return None
        self._faults[0].count -= 1
        return self._faults[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                exchange = Exchange(self.command, urlsplit(self.path).path, body, started=time.monotonic())
                with proxy._lock:
                    proxy.exchanges.append(exchange)
                    fault = proxy._next_fault()
                    holding = (fault is None and proxy.hold is not None and not proxy.held.is_set()
                               and proxy.hold(exchange))
                if fault is not None:
                    exchange.status, exchange.injected = fault.status, True
                    self._answer(exchange, fault.status, fault.headers, b'{"detail": "injected"}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = proxy._client.request(self.command, proxy._origin + self.path, headers=headers,
                                               content=body)
                exchange.status = answer.status_code
                if holding:   # the server acted; the client never hears of it
                    proxy.held.set()
                    proxy._release.wait(60)
                    self.close_connection = True
                    return
                self._answer(exchange, answer.status_code,
                             {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP},
                             answer.content)

            def _answer(self, exchange: Exchange, status: int, headers: dict, content: bytes) -> None:
                exchange.answered = time.monotonic()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "content-type" not in {k.lower() for k in headers}:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                try:
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):   # the client was killed meanwhile
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def release(self) -> None:
        self._release.set()

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._client.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
