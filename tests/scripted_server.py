"""A tiny real HTTP server on 127.0.0.1 that answers from a script and records requests.

    with ScriptedServer([Reply(503), Reply(200, body={"ok": True})]) as srv:
        httpx.get(srv.url + "/x")

Replies are used in order; the last one repeats. A callable `respond(request)`
may be given instead of a script; `echo(status)` and `protocol_breaker` are
two for redaction tests: servers that quote the request's credentials back.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None            # dict/list -> JSON, str/bytes as is
    headers: dict = field(default_factory=dict)
    delay: float = 0.0          # seconds to wait before answering (timeouts)
    raw: bytes | None = None    # sent as is instead of an HTTP answer; then the connection closes


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    target: str = ""            # as sent: the path and the query string, still URL-encoded

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedServer:
    def __init__(self, script: list[Reply] | None = None,
                 respond: Callable[[Seen], Reply] | None = None):
        self.script = list(script or [Reply()])
        self.respond = respond
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b""
                while True:   # a streamed request body: hex size, CRLF, data, CRLF; size 0 ends it
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    body += self.rfile.read(size)
                    self.rfile.readline()
                    if size == 0:
                        return body

            def _any(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query),
                            dict(self.headers.items()), self._body(), self.path)
                reply = outer._next(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw is not None:
                    self.close_connection = True
                    self.wfile.write(reply.raw)
                    return
                body = reply.body
                headers = dict(reply.headers)
                if isinstance(body, (dict, list)):
                    body = json.dumps(body)
                    headers.setdefault("Content-Type", "application/scim+json")
                if isinstance(body, str):
                    body = body.encode()
                body = body or b""
                try:
                    self.send_response(reply.status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            if self.respond is not None:
                return self.respond(seen)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- servers that quote a request's credentials back ---------------------------

CREDENTIAL_HEADERS = ("Authorization", "Ocp-Apim-Subscription-Key")


def _credentials(seen: Seen) -> dict:
    wanted = {h.lower() for h in CREDENTIAL_HEADERS}
    return {k: v for k, v in seen.headers.items() if k.lower() in wanted}


def quoted(seen: Seen) -> str:
    """What a careless server says back about a request: its credential headers (as a Python
    repr, so escaped), its query string (URL-encoded) and its body (JSON or a form, as sent)."""
    query = seen.target.partition("?")[2]
    return (f"ECHO headers {_credentials(seen)!r} query {query} "
            f"body {seen.body.decode('utf-8', 'replace')}")


def echo(status: int = 400) -> Callable[[Seen], Reply]:
    """respond=: every request answered `status`, the request quoted in every field a
    client reads an error from (SCIM detail, REST message, Ytel's envelope, CCC's ResponseText)."""
    def respond(seen: Seen) -> Reply:
        text = quoted(seen)
        return Reply(status, {"detail": text, "message": text, "status": False,
                              "error": [{"code": status, "message": text}],
                              "ResponseCode": status, "ResponseText": text})
    return respond


def protocol_breaker(seen: Seen) -> Reply:
    """respond=: an answer that breaks HTTP in its first header line, which quotes the
    request's credential headers; httpx's error repeats that line as a bytes repr."""
    line = "; ".join(f"{k}: {v}" for k, v in _credentials(seen).items())
    return Reply(raw=b"HTTP/1.1 200 OK\r\nEcho " + line.encode("latin-1") + b"\r\n\r\n")
