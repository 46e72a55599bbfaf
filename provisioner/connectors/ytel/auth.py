"""Ytel's token flow as an httpx.Auth: resource-owner credentials, then the
`refresh_token` grant before the access token's 120 minutes are up.

POST /auth/v3/token answers in Ytel's envelope with `payload[0].accessToken`
and `refreshToken`, and no lifetime. Seed 002: an access token is valid for
120 minutes by default; `refreshDurationMinutes` (sent as an integer) is how
long the *refresh* token stays valid. So the access token is renewed before
its 120 minutes end, with the refresh token while that is still valid by our
clock and with the credentials once it is not. A 401, or a 403 whose error
names the token ("Bad token"), renews the token once and repeats the request
once; a second refusal is the answer, never a loop. A refresh the server
refuses falls back to the credentials.

Pacing is the client's (http.make_client): the token endpoint has its own
limit (25/s, `TOKEN_RATE_LIMIT`), so the target's client chooses a limiter by
URL. This flow runs above the client's transport, which paces every request
it is handed: a request takes its slot once the token is in hand (it never
holds one while it waits for a token), and a request repeated after a
renewal takes a slot of its own.

One token serves every thread; it, the refresh token and the password never
reach a log line or an exception (tokens are registered with secrets.redact).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Generator

import httpx

from ...errors import TargetError
from ...http import HeaderRateLimiter, RateLimiter, limiter_by_url, make_client, post_for_token, safe_url
from ...secrets import Secret, register
from . import envelope

# renew this long before the expiry (at most a tenth of the lifetime)
RENEW_EARLY_S = 120.0
ACCESS_TOKEN_MINUTES = 120      # seed 002: "By default an access token is valid for 120 minutes"
TOKEN_RATE_LIMIT = 25           # requests/s the token endpoint takes (X-RateLimit-Limit-Second)


REFRESH_MARGIN_S = 30.0         # a refresh token this close to its end is not tried


def _good_until(started: float, minutes: float, early: float) -> float:
    lifetime = minutes * 60
    return started + lifetime - min(early, lifetime / 10)


def ytel_client(base_url: str, token_url: str, limiter: RateLimiter, rate_limit: float | None,
                **options: Any) -> httpx.Client:
    """A client for a Ytel API paced by `limiter`, whose token endpoint, `token_url`, is paced
    to its own documented limit (`rate_limit`, when set, is a ceiling for both)."""
    token_limiter = HeaderRateLimiter(rate_limit, assumed=TOKEN_RATE_LIMIT)
    return make_client(base_url, headers={"Accept": "application/json"},
                       limiter=limiter_by_url({token_url: token_limiter}, limiter), **options)


class YtelTokenAuth(httpx.Auth):
    requires_response_body = True   # a 403 is a token problem only if its body says so

    def __init__(self, token_url: str, username: str, password: Secret, *, refresh_minutes: int = 120,
                 access_minutes: float = ACCESS_TOKEN_MINUTES, client: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.token_url, self.username = token_url, username
        self._password = password
        self.refresh_minutes, self.access_minutes = int(refresh_minutes), access_minutes
        self._client, self._clock = client, clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh: str | None = None
        self._renew_at = 0.0
        self._refresh_until = 0.0
        self.grants: list[str] = []   # grant types used so far (for logs and tests)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if bad_token(response):
            request.headers["Authorization"] = f"Bearer {self.token(stale=token)}"
            yield request

    def token(self, stale: str | None = None) -> str:
        """The current token: fetched when there is none, renewed when due or `stale`."""
        with self._lock:
            if self._token is None:
                self._grant(self._login_body())
            elif self._token == stale or self._clock() >= self._renew_at:
                if self._refresh is None or self._clock() >= self._refresh_until:
                    self._grant(self._login_body())   # no refresh token, or too old to try
                else:
                    try:
                        self._grant(self._refresh_body())
                    except TargetError:
                        self._grant(self._login_body())   # the refresh token was revoked
            return self._token

    def _login_body(self) -> dict:
        return {"grantType": "resource_owner_credentials", "username": self.username,
                "password": self._password.reveal(), "refreshToken": "", "captcha": "",
                "refreshDurationMinutes": self.refresh_minutes}

    def _refresh_body(self) -> dict:
        return {"grantType": "refresh_token", "username": self.username, "password": "",
                "refreshToken": self._refresh or "", "captcha": "",
                "refreshDurationMinutes": self.refresh_minutes}

    def _grant(self, body: dict) -> None:
        started = self._clock()
        response = post_for_token(self._client, self.token_url, json=body)
        answer = envelope.body_of(response)
        where = safe_url(self.token_url)
        if not envelope.succeeded(response, answer):
            code = envelope.error_code(response, answer)
            text = envelope.error_text(response, answer)
            if code in (400, 401, 403):
                raise TargetError(f"the Ytel token endpoint {where} refused {self.username!r} "
                                  f"({text}): check username and password (an API user's, not a "
                                  "UI token)", 401)
            raise TargetError(f"the Ytel token endpoint {where} answered {text}", response.status_code,
                              retryable=response.status_code >= 500 or response.status_code == 429)
        first = (envelope.payload(answer) or [{}])[0]
        token, refresh = first.get("accessToken"), first.get("refreshToken")
        if not isinstance(token, str) or not token:
            raise TargetError(f"the Ytel token endpoint {where} answered without an accessToken")
        register(token)
        if isinstance(refresh, str) and refresh:
            register(refresh)
            self._refresh = refresh
            self._refresh_until = _good_until(started, self.refresh_minutes, REFRESH_MARGIN_S)
        self._token = token
        self._renew_at = _good_until(started, self.access_minutes, RENEW_EARLY_S)
        self.grants.append(body["grantType"])

    def __repr__(self) -> str:
        return f"YtelTokenAuth({safe_url(self.token_url)!r}, {self.username!r}, {self._password!r})"


def bad_token(response: httpx.Response) -> bool:
    """401, or 403 whose error is about the token (Ytel answers "Bad token" with either)."""
    if response.status_code == 401:
        return True
    if response.status_code != 403:
        return False
    body = envelope.body_of(response)
    return "token" in envelope.error_text(response, body).lower()
