"""The httpx layer every target uses: client set-up, auth, rate limiting, retries.

make_client gives a client whose transport (ResilientTransport) paces and
retries every request, so a connector only states its limits and maps the
answers it gets to errors.

Nothing here may put a secret in a log line or an exception: URLs are shown
without their query or user info, headers are never shown, and error bodies
pass through secrets.redact.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import random
import ssl
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Collection, Generator, Iterator, Mapping, Union

import httpx

from .errors import ConfigError, TargetError
from .secrets import Secret, redact, register

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A request signed for the moment it is sent (CCC) carries, under this extension, a function
# that makes it again: the transport sends each retry freshly signed, not a stale copy.
SIGN_AGAIN = "provisioner.sign_again"
# retries after the first attempt, and the backoff: from BACKOFF seconds, doubling, at most MAX_BACKOFF
RETRIES, BACKOFF, MAX_BACKOFF = 5, 0.5, 30.0


def _version() -> str:
    import provisioner
    version = getattr(provisioner, "__version__", None)
    if version:
        return version
    from importlib import metadata
    try:
        return metadata.version("provisioner")
    except metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"provisioner/{_version()}"


def make_client(base_url: str = "", *, auth: httpx.Auth | None = None,
                headers: Mapping[str, str] | None = None, timeout: float | httpx.Timeout = 30.0,
                tls_verify: bool = True, ca_file: Path | None = None, limiter: Limiter = None,
                retries: int = RETRIES, backoff: float = BACKOFF, max_backoff: float = MAX_BACKOFF,
                sleep: Callable[[float], None] = time.sleep,
                event_hooks: Mapping[str, list] | None = None) -> httpx.Client:
    """An httpx.Client whose every request is paced, retried and kept free of secrets.

    `limiter` is a RateLimiter for every request, or a function choosing one
    per request (None: unpaced), for a server with separate limits per
    endpoint. `event_hooks` are httpx's (tests watch requests with them).
    """
    verify: bool | ssl.SSLContext = True
    if not tls_verify:
        log.warning("TLS certificate verification is OFF for %s: anyone on the network "
                    "path can read and change this traffic", safe_url(base_url))
        verify = False
    elif ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"cannot use CA file {ca_file}: {reason}") from None
    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    transport = ResilientTransport(httpx.HTTPTransport(verify=verify), limiter=limiter, retries=retries,
                                   backoff=backoff, max_backoff=max_backoff, sleep=sleep)
    return httpx.Client(base_url=base_url, auth=auth, headers=all_headers, timeout=timeout,
                        transport=transport, event_hooks=dict(event_hooks or {}))


def post_for_token(client: httpx.Client | None, url: str, **kwargs: Any) -> httpx.Response:
    """POST to a token endpoint through `client` (its transport paces and retries it), or through
    a client of its own when there is none. The client's own auth flow is left out: it would wait
    for this very token."""
    own = client is None
    client = client or make_client(timeout=30)
    try:
        return client.post(url, auth=None, **kwargs)
    finally:
        if own:
            client.close()


class BearerAuth(httpx.Auth):
    def __init__(self, token: Secret):
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # revealed per request so the plain value lives only in the outgoing header
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth({self._token!r})"


class BasicAuth(httpx.Auth):
    def __init__(self, username: str, password: Secret):
        self.username = username
        self._password = password
        # the wire form does not contain the password's own spellings: a server
        # quoting the header back must still be redacted
        register(self._wire())

    def _wire(self) -> str:
        return base64.b64encode(f"{self.username}:{self._password.reveal()}".encode()).decode("ascii")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Basic " + self._wire()
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth({self.username!r}, {self._password!r})"


class RateLimiter:
    """Lets at most `rate` requests start per second (None: no limit), across threads.

    Each caller reserves the next free slot under the lock and sleeps outside
    it, so waiting threads do not hold each other up and slots go in order.
    A caller woken late (the process was not scheduled for a while) does not
    go at once with those whose slots fell in the same gap: it goes at least
    an interval after the previous departure, so a hiccup never crowds more
    requests than `rate` allows into one second.
    """

    def __init__(self, rate: float | None, *, burst: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no limit)")
        self.rate = rate
        self._burst = max(1, burst)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = float("-inf")
        self._departed = float("-inf")   # when the last caller actually went

    def acquire(self) -> None:
        if self.rate is None:
            return
        interval = 1.0 / self.rate
        with self._lock:
            now = self._clock()
            # unused slots accumulate only up to `burst`
            slot = max(self._next, now - (self._burst - 1) * interval)
            self._next = slot + interval
            if slot <= now:
                self._departed = max(self._departed, now)
                return
        self._sleep(slot - now)
        while True:
            with self._lock:
                now = self._clock()
                # woken after its slot: not before an interval after the previous departure
                wait = self._departed + interval - now if now > slot else 0.0
                if wait <= 0:
                    self._departed = max(self._departed, now)
                    return
            self._sleep(wait)

    def observe(self, response: httpx.Response) -> None:
        """Called by the transport with every answer; a limiter that learns from headers overrides it."""


class HeaderRateLimiter(RateLimiter):
    """A RateLimiter that paces to the per-second limit the server announces.

    The limit comes from `X-RateLimit-Limit-Second` (or `RateLimit-Limit`) of
    each answer and is used at `share` of it, so that clock skew between the
    server's windows and our slots does not end in a 429; `rate`, when given,
    is a ceiling. `assumed` is the vendor's documented limit, paced to (at
    `share`) from the very first request, before any answer has announced one:
    without it the requests sent while the first answer is on its way go
    unpaced. When `RateLimit-Remaining` reaches 0, or a 429 arrives, no
    request starts before `RateLimit-Reset` seconds have passed.
    """

    def __init__(self, rate: float | None = None, *, assumed: float | None = None, share: float = 0.95,
                 **kwargs: Any):
        super().__init__(rate, **kwargs)
        self.ceiling, self.share = rate, share
        if assumed:
            self._follow(assumed)

    def _follow(self, limit: float) -> None:
        rate = limit * self.share
        self.rate = min(rate, self.ceiling) if self.ceiling else rate

    def observe(self, response: httpx.Response) -> None:
        headers = response.headers
        limit = _header_number(headers, "X-RateLimit-Limit-Second", "RateLimit-Limit")
        remaining = _header_number(headers, "X-RateLimit-Remaining-Second", "RateLimit-Remaining")
        reset = _header_number(headers, "RateLimit-Reset")
        with self._lock:
            if limit and limit > 0:
                self._follow(limit)
            if reset and (response.status_code == 429 or (remaining is not None and remaining <= 0)):
                self._next = max(self._next, self._clock() + reset)


# a limiter for every request, or a function choosing one per request (None: not paced)
Limiter = Union[RateLimiter, Callable[[httpx.Request], Union[RateLimiter, None]], None]


def limiter_by_url(limiters: Mapping[str, RateLimiter], default: RateLimiter | None
                   ) -> Callable[[httpx.Request], RateLimiter | None]:
    """For make_client: the limiter of the URL a request goes to (its query aside), else `default`
    (an endpoint with a limit of its own, such as a token endpoint)."""
    keyed = {safe_url(url): limiter for url, limiter in limiters.items()}
    return lambda request: keyed.get(safe_url(request.url), default)


def _header_number(headers: httpx.Headers, *names: str) -> float | None:
    for name in names:
        try:
            return float(headers[name])
        except (KeyError, ValueError):
            continue
    return None


def safe_url(url: httpx.URL | str) -> str:
    """scheme://host[:port]/path: no user info, query or fragment (they may hold secrets)."""
    try:
        u = httpx.URL(str(url))
    except httpx.InvalidURL:
        return "<invalid URL>"
    if not u.host:
        return u.path
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}{u.path}"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, backoff: float, max_backoff: float) -> float:
    """Exponential backoff with jitter: between half and all of backoff * 2**attempt."""
    ceiling = min(max_backoff, backoff * (2 ** attempt))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class ResilientTransport(httpx.BaseTransport):
    """Paces, retries and words the failures of every request an httpx.Client sends.

    Per request: `limiter.acquire()` before each attempt and `limiter.observe`
    with each answer; 429, 500, 502, 503 and 504 answers and transport errors
    are sent again up to `retries` times, after Retry-After (capped at
    `max_backoff`) or an exponential backoff with jitter. The last answer is
    returned whatever its status. A transport error that outlasts the retries
    is a TargetError (retryable), one a retry cannot cure (see `_permanent`)
    is one at once (not retryable). Auth flows run above the transport, so a
    request an auth flow sends again (after renewing a token) is paced too.
    """

    def __init__(self, inner: httpx.BaseTransport, *, limiter: Limiter = None, retries: int = RETRIES,
                 backoff: float = BACKOFF, max_backoff: float = MAX_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep):
        self._inner = inner
        self._limiter = limiter
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self._sleep = sleep

    def limiter_for(self, request: httpx.Request) -> RateLimiter | None:
        if self._limiter is None or isinstance(self._limiter, RateLimiter):
            return self._limiter
        return self._limiter(request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()   # a streamed body could not be sent a second time
        limiter = self.limiter_for(request)
        where = f"{request.method} {safe_url(request.url)}"
        attempt = 0
        while True:
            if attempt and SIGN_AGAIN in request.extensions:
                request = request.extensions[SIGN_AGAIN]()
            if limiter is not None:
                limiter.acquire()
            try:
                response = self._inner.handle_request(request)
            except httpx.TransportError as exc:
                permanent = _permanent(exc)
                if permanent:
                    raise TargetError(f"{where} failed: {permanent}", None, retryable=False) from exc
                if attempt >= self.retries:
                    detail = redact(str(exc)).strip()
                    raise TargetError(
                        f"{where} failed after {attempt + 1} attempt(s): {type(exc).__name__}"
                        + (f" ({detail})" if detail else ""), None, retryable=True) from exc
                wait = backoff_delay(attempt, self.backoff, self.max_backoff)
                log.info("%s failed (%s); retry %d of %d in %.2fs",
                         where, type(exc).__name__, attempt + 1, self.retries, wait)
            else:
                if limiter is not None:
                    limiter.observe(response)
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return response
                _discard(response)
                hinted = parse_retry_after(response.headers.get("Retry-After"))
                wait = (min(hinted, self.max_backoff) if hinted is not None
                        else backoff_delay(attempt, self.backoff, self.max_backoff))
                log.info("%s answered %d; retry %d of %d in %.2fs",
                         where, response.status_code, attempt + 1, self.retries, wait)
            self._sleep(wait)
            attempt += 1

    def close(self) -> None:
        self._inner.close()


def _discard(response: httpx.Response) -> None:
    """Reads and closes an answer that is not returned: read to its end, its connection is
    used again; a failure reading it only means the retry opens another."""
    try:
        response.read()
    except httpx.TransportError:
        pass
    finally:
        response.close()


@contextmanager
def acting(target: str, action: str) -> Iterator[None]:
    """Names the target and the action in a TargetError raised while a request is sent
    (by the transport, or by an auth flow fetching its token)."""
    try:
        yield
    except TargetError as exc:
        raise TargetError(f"{target}: {action}: {exc}", exc.status, exc.retryable) from exc


def _permanent(exc: httpx.TransportError) -> str | None:
    """Why sending again cannot help, for a transport error that is not transient; else None.

    A certificate that does not verify stays unverifiable (retrying would
    only hammer a host that may be an impostor), and a request httpx refuses
    to send (a header with a line break) is refused again.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "the certificate does not verify"
            return (f"TLS certificate verification failed ({reason}): set ca_file to the CA "
                    "that signed the server's certificate")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.LocalProtocolError):
        return f"the request could not be sent: {redact(str(exc)).strip() or type(exc).__name__}"
    return None


def error_detail(response: httpx.Response) -> tuple[str | None, str | None]:
    """(detail, type) from an error body: SCIM detail/scimType, or common REST shapes."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    detail = (body.get("detail") or body.get("message") or body.get("error_description")
              or body.get("reason"))
    kind = body.get("scimType") or (body.get("error") if isinstance(body.get("error"), str) else None)
    if isinstance(detail, dict):
        detail = detail.get("message")
    detail = redact(str(detail)).strip()[:300] if detail else None
    kind = redact(str(kind)).strip()[:60] if kind else None
    return detail, kind


def error_for(target: str, action: str, response: httpx.Response,
              cls: type[TargetError] = TargetError) -> TargetError:
    """A TargetError like "directory: create refused (409 uniqueness): <server's detail>"."""
    status = response.status_code
    detail, kind = error_detail(response)
    verb = "failed" if status >= 500 else "refused"
    code = f"{status} {kind}" if kind and kind != detail else str(status)
    text = detail or response.reason_phrase or "no detail given"
    return cls(f"{target}: {action} {verb} ({code}): {text}", status,
               retryable=status in RETRY_STATUSES)


def accepted(response: httpx.Response, target: str, action: str, *, ok: Collection[int] = (200,),
             errors: Mapping[int, type[TargetError]] | None = None, unauthorized: str,
             refusal: Callable[..., TargetError] = error_for) -> httpx.Response:
    """`response` when its status is in `ok`; else the TargetError for it.

    A 401 is "<target>: authentication refused (401): <unauthorized>" (what to
    check); any other status is `refusal(target, action, response, cls)`, cls
    from `errors` by status (TargetError when not there).
    """
    status = response.status_code
    if status in ok:
        return response
    if status == 401:
        raise unauthorized_error(target, unauthorized)
    raise refusal(target, action, response, (errors or {}).get(status, TargetError))


def unauthorized_error(target: str, advice: str) -> TargetError:
    return TargetError(f"{target}: authentication refused (401): {advice}", 401, retryable=False)


def json_of(response: httpx.Response, target: str, action: str, *, expect: type = dict,
            what: str = "a JSON object", server: str = "the server") -> Any:
    """The answer's JSON when it is an `expect`; else a TargetError saying what came instead."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, expect):
        raise TargetError(f"{target}: {action}: {server} answered {response.status_code} "
                          f"with something that is not {what}")
    return body
