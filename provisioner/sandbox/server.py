"""The base every vendor emulator builds on: a threaded HTTP server on 127.0.0.1,
JSON answers, bearer tokens that expire, and fault knobs for tests.

A vendor emulator subclasses `Emulator`, lists its routes and keeps its state
in memory behind `self.lock`:

    class MyVendor(Emulator):
        def routes(self):
            return [("GET", r"/api/users", self.list_users)]

        def list_users(self, request):
            return 200, [...]

    with MyVendor(Faults()).start() as server:   # a free port unless one is given
        ... server.base_url ...

Faults are deterministic so tests can count on them: a rate of 0.25 fails
exactly every fourth request, not a random quarter of them.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

JSON = "application/json"


@dataclass
class Faults:
    """What goes wrong, on purpose. Rates are fractions of requests (0 = never)."""
    latency: float = 0.0          # seconds added to every answer
    error_rate: float = 0.0       # answered 500
    throttle_rate: float = 0.0    # answered 429 with Retry-After
    retry_after: float = 1.0      # the Retry-After a 429 carries, in seconds
    token_lifetime: float = 3600.0  # seconds an issued token works
    # what the token answer claims (None: the truth); a lie forces the client's 401 path
    advertised_lifetime: float | None = None


def faults_of(settings) -> Faults:
    """The Faults a [sandbox.<type>] table asks for (the keys SandboxSettingsBase declares)."""
    return Faults(latency=settings.latency, error_rate=settings.error_rate,
                  throttle_rate=settings.throttle_rate, retry_after=settings.retry_after,
                  token_lifetime=settings.token_lifetime)


class _Every:
    """Deterministic fraction: request n is hit when floor(n * rate) grows."""

    def __init__(self) -> None:
        self.count = 0

    def hit(self, rate: float) -> bool:
        if rate <= 0:
            return False
        self.count += 1
        return math.floor(self.count * rate) > math.floor((self.count - 1) * rate)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    params: dict[str, str] = field(default_factory=dict)   # named groups of the route

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise HttpError(400, "the request body is not valid JSON") from None

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class HttpError(Exception):
    """Raised by a handler to answer an error; `body` defaults to {"detail": message}."""

    def __init__(self, status: int, message: str, body: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.body, self.headers = status, body, headers or {}


Handler = Callable[[Request], tuple]   # -> (status, body) or (status, body, headers)


class UserStore:
    """State-file support for an emulator whose whole state is `self.users` (mix in before Emulator)."""

    users: dict
    lock: Any

    def snapshot(self) -> Any:
        with self.lock:
            return {"users": self.users}

    def restore(self, data: Any) -> None:
        with self.lock:
            self.users = dict(data.get("users") or {})


class Emulator:
    """A vendor API in memory. Subclasses give `routes()` and the handlers."""

    name = "emulator"

    def __init__(self, faults: Faults | None = None, *, state_file: Path | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.faults = faults or Faults()
        # what token expiry is measured by: tests pass a clock they move, so an expiry
        # happens when the test says, not when a loaded machine happens to get there
        self.clock = clock
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str, int]] = []   # (method, path, status) of each, for tests
        self._tokens: dict[str, float] = {}         # token -> expiry (on self.clock)
        self._errors, self._throttles = _Every(), _Every()
        self._routes = [(m, re.compile(p + r"/?\Z"), h) for m, p, h in self.routes()]
        self.state_file = state_file
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to override ---------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def snapshot(self) -> Any:
        """The state to keep in `state_file` (JSON-able); None keeps nothing."""
        return None

    def restore(self, data: Any) -> None:
        pass

    # -- tokens ----------------------------------------------------------------

    def issue_token(self) -> tuple[str, float]:
        """A new bearer token and the lifetime to announce for it."""
        token = secrets.token_hex(32).upper()
        with self.lock:
            self._tokens[token] = self.clock() + self.faults.token_lifetime
        advertised = self.faults.advertised_lifetime
        return token, self.faults.token_lifetime if advertised is None else advertised

    def revoke_tokens(self) -> None:
        with self.lock:
            self._tokens.clear()

    def require_token(self, request: Request) -> None:
        token = request.bearer()
        with self.lock:
            expiry = self._tokens.get(token) if token else None
        if expiry is None or expiry <= self.clock():
            raise HttpError(401, "invalid or expired access token",
                            {"error": "invalid_token", "error_description": "invalid or expired access token"})

    # -- serving ---------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> "Emulator":
        """Serve on a background thread (port 0: a free one); returns self."""
        if self.state_file is not None and self.state_file.exists():
            self.restore(json.loads(self.state_file.read_text(encoding="utf-8")))
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        # a short poll interval makes stop() quick (tests start and stop many emulators)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name=f"sandbox-{self.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None
        self.save()

    def save(self) -> None:
        data = self.snapshot()
        if self.state_file is not None and data is not None:
            tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(self.state_file)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dispatch(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        answer = self._dispatch(request)
        with self.lock:
            self.requests.append((request.method, request.path, answer[0]))
        return answer

    def statuses(self, path_part: str = "") -> list[int]:
        """The statuses answered so far, to requests whose path contains `path_part`."""
        with self.lock:
            return [status for _, path, status in self.requests if path_part in path]

    def _dispatch(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            error = self._errors.hit(self.faults.error_rate)
            throttle = not error and self._throttles.hit(self.faults.throttle_rate)
        if self.faults.latency:
            time.sleep(self.faults.latency)
        if error:
            return 500, {"detail": "Internal Server Error (injected)"}, {}
        if throttle:
            return 429, {"detail": "Too Many Requests (injected)"}, {
                "Retry-After": f"{self.faults.retry_after:g}"}
        allowed = []
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            request.params = {k: unquote(v) for k, v in match.groupdict().items()}
            try:
                answer = handler(request)
            except HttpError as exc:
                return exc.status, exc.body if exc.body is not None else {"detail": str(exc)}, exc.headers
            status, body, *headers = answer
            return status, body, (headers[0] if headers else {})
        if allowed:
            return 405, {"detail": f"{request.method} is not allowed here"}, {"Allow": ", ".join(allowed)}
        return 404, {"detail": f"no such endpoint: {request.path}"}, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive: the client reuses connections
            server_version = f"provisioner-sandbox-{emulator.name}"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                request = Request(self.command, url.path, query, self.headers, body)
                try:
                    status, payload, headers = emulator.dispatch(request)
                except Exception:  # a bug in an emulator answers 500, like a real server would
                    log.exception("%s: unexpected error", emulator.name)
                    status, payload, headers = 500, {"detail": "emulator bug"}, {}
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", headers.pop("Content-Type", JSON))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s: " + format, emulator.name, *args)

        return _Handler
