"""OAuth 2.0 client credentials (RFC 6749 §4.4) as an httpx.Auth flow.

The token is fetched on first use, renewed shortly before it expires, and
renewed once more when the server answers 401 anyway (a token revoked or
expired early). One token serves every thread: the executor applies items from
worker threads, and a renewal by one of them is seen by all.

Neither the client secret nor a token ever reaches a log line or an exception:
the form body is built per fetch, tokens are registered with secrets.redact.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generator

import httpx

from ..errors import TargetError
from ..http import error_detail, post_for_token, safe_url
from ..secrets import Secret, register

# renew when less than this share of the lifetime is left (at most RENEW_MAX_S early)
RENEW_SHARE = 0.1
RENEW_MAX_S = 60.0


class ClientCredentialsAuth(httpx.Auth):
    """`Authorization: Bearer <token>` from a client-credentials token endpoint.

    `extra` adds form fields (e.g. a `scope` the vendor wants). The
    token endpoint is called through `client`, whose transport paces and
    retries it like any request (a target passes its own client, so its
    rate_limit counts the token requests too); without one, through a client
    of its own from http.make_client.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: Secret, *,
                 extra: dict[str, str] | None = None, client: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._extra = dict(extra or {})
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0   # tokens fetched so far (for logs and tests)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # once: a second 401 with a fresh token means the credentials themselves are wrong
            request.headers["Authorization"] = f"Bearer {self.token(stale=token)}"
            yield request

    def token(self, stale: str | None = None) -> str:
        """The current token, fetched when there is none, it is due, or it is `stale`."""
        with self._lock:
            if self._token is None or self._token == stale or self._clock() >= self._renew_at:
                self._fetch()
            return self._token

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self._secret.reveal(), **self._extra}
        started = self._clock()
        response = post_for_token(self._client, self.token_url, data=form)
        where = safe_url(self.token_url)
        if response.status_code in (400, 401, 403):
            detail, kind = error_detail(response)
            raise TargetError(f"the token endpoint {where} refused client_id {self.client_id!r} "
                              f"({response.status_code} {kind or detail or response.reason_phrase}): "
                              "check client_id, client_secret and the tenant domain", 401)
        if response.status_code != 200:
            raise TargetError(f"the token endpoint {where} answered {response.status_code}",
                              response.status_code, retryable=response.status_code >= 500)
        try:
            body = response.json()
            token = body["access_token"]
            # some vendors send expires_in as a string ("3600"); RFC 6749 says a number
            lifetime = float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TargetError(f"the token endpoint {where} answered without a usable access_token") from None
        if not isinstance(token, str) or not token:
            raise TargetError(f"the token endpoint {where} answered without a usable access_token")
        register(token)
        self._token = token
        self._renew_at = started + lifetime - min(RENEW_MAX_S, lifetime * RENEW_SHARE)
        self.fetches += 1

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth({safe_url(self.token_url)!r}, {self.client_id!r}, {self._secret!r})"
