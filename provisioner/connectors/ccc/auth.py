"""CCC WebServices' signed request (shared api-notes §5, seed 000) as an httpx.Auth flow.

A CCC call carries no header credential: the body holds four parameters,
`AuthUsername`, `AuthToken`, `RequestDateTime` and `Data`, and the token is

    token1    = sha256(Data)
    token2    = sha256("{ClientID}:{AuthUsername}:{sha256(SecretKey)}")
    AuthToken = sha256("{token1}:{token2}:{RequestDateTime}")

(hex digests), RequestDateTime being `YYYY-MM-DD HH:MM:SS` in the client's time
zone: a named zone when one is configured, else the host's local zone (what the
seed's "Client's current time-zone" means for a client that names none). The caller sends the Data JSON as the request content; this flow reads
those exact bytes, signs them and replaces the body with the four parameters,
so what is hashed is byte for byte what is sent. A retry gets a fresh
RequestDateTime and token: the signed request tells the transport how to sign
it again (http.SIGN_AGAIN).

The secret key is read per request and appears nowhere but in the digest.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Callable, Generator
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

import httpx

from ...http import SIGN_AGAIN
from ...secrets import Secret

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
BODY_FORMATS = ("text", "form")
# the order public client code sends them in
PARAMETERS = ("AuthUsername", "AuthToken", "RequestDateTime", "Data")


def sha256_hex(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def auth_token(data: bytes, client_id: str, username: str, secret_key: str, request_datetime: str) -> str:
    """The AuthToken of one request (the server side recomputes it the same way)."""
    token1 = sha256_hex(data)
    token2 = sha256_hex(f"{client_id}:{username}:{sha256_hex(secret_key)}")
    return sha256_hex(f"{token1}:{token2}:{request_datetime}")


def encode_parameters(params: dict[str, str], body_format: str) -> tuple[bytes, str]:
    """(body, Content-Type): `Name = value` lines as text/plain, or a form."""
    if body_format == "form":
        return urlencode(params).encode("ascii"), "application/x-www-form-urlencoded"
    if any("\n" in v or "\r" in v for v in params.values()):
        # a line break would end the value early and the server would hash something else
        raise ValueError("a text/plain parameter cannot hold a line break: send compact JSON")
    return "".join(f"{k} = {v}\r\n" for k, v in params.items()).encode("utf-8"), "text/plain; charset=utf-8"


def decode_parameters(body: bytes, content_type: str) -> dict[str, str]:
    """The inverse of encode_parameters (the emulator's side); unknown lines are ignored."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    params: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition("=")
        if sep:
            # only the one space either side of "=" belongs to the format
            params[name.strip()] = value[1:] if value.startswith(" ") else value
    return params


class CccSignedAuth(httpx.Auth):
    """Signs a request whose content is the Data JSON and rewrites its body to the four parameters.

    `clock` returns the current instant (aware); it is shown in `time_zone`, an IANA name, or
    in the host's local zone when that is None.
    """

    requires_request_body = True

    def __init__(self, client_id: str, username: str, secret_key: Secret, *, time_zone: str | None = None,
                 body_format: str = "text",
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        if body_format not in BODY_FORMATS:
            raise ValueError(f"body_format must be one of {', '.join(BODY_FORMATS)}, not {body_format!r}")
        self.client_id = str(client_id)
        self.username = username
        self._secret = secret_key
        self.zone = ZoneInfo(time_zone) if time_zone else None   # None: astimezone() goes local
        self.body_format = body_format
        self._clock = clock

    def request_datetime(self) -> str:
        return self._clock().astimezone(self.zone).strftime(DATETIME_FORMAT)

    def parameters(self, data: bytes) -> dict[str, str]:
        """The four parameters for Data `data` (UTF-8 JSON bytes), signed now."""
        when = self.request_datetime()
        token = auth_token(data, self.client_id, self.username, self._secret.reveal(), when)
        return {"AuthUsername": self.username, "AuthToken": token, "RequestDateTime": when,
                "Data": data.decode("utf-8")}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self._signed(request)

    def _signed(self, request: httpx.Request) -> httpx.Request:
        body, content_type = encode_parameters(self.parameters(request.content or b"{}"), self.body_format)
        headers = httpx.Headers(request.headers)
        for name in ("Content-Length", "Transfer-Encoding"):
            headers.pop(name, None)
        headers["Content-Type"] = content_type
        return httpx.Request(request.method, request.url, headers=headers, content=body,
                             extensions={**request.extensions, SIGN_AGAIN: lambda: self._signed(request)})

    def __repr__(self) -> str:
        return f"CccSignedAuth({self.client_id!r}, {self.username!r}, {self._secret!r})"
