import base64
import datetime as dt
import logging
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from provisioner import http as H
from provisioner.errors import ConfigError, TargetError
from provisioner.secrets import Secret
from fake_clock import FakeClock
from scripted_server import Reply, ScriptedServer

SECRET = "s3cret-token-value-93f1"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _send(srv, *replies, path="/x", **kw):
    sleeps = Sleeps()
    with H.make_client(srv.url, sleep=sleeps, **kw) as client:
        response = client.get(path)
    return response, sleeps


def test_retries_503_then_succeeds_with_growing_backoff():
    with ScriptedServer([Reply(503), Reply(503), Reply(200, {"ok": True})]) as srv:
        response, sleeps = _send(srv, backoff=0.5)
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert len(srv.requests) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_each_retryable_status_is_retried(status):
    with ScriptedServer([Reply(status), Reply(200)]) as srv:
        response, sleeps = _send(srv)
    assert response.status_code == 200 and len(srv.requests) == 2 and len(sleeps) == 1


def test_429_retry_after_seconds_is_honoured():
    with ScriptedServer([Reply(429, headers={"Retry-After": "1"}), Reply(200)]) as srv:
        response, sleeps = _send(srv)
    assert response.status_code == 200
    assert sleeps == [1.0]


def test_retry_after_is_capped():
    with ScriptedServer([Reply(503, headers={"Retry-After": "3600"}), Reply(200)]) as srv:
        _, sleeps = _send(srv, max_backoff=30)
    assert sleeps == [30]


def test_backoff_is_capped():
    with ScriptedServer([Reply(500)]) as srv:
        response, sleeps = _send(srv, retries=6, backoff=1, max_backoff=4)
    assert response.status_code == 500 and len(srv.requests) == 7
    assert max(sleeps) <= 4 and min(sleeps[3:]) >= 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412])
def test_other_4xx_are_never_retried(status):
    with ScriptedServer([Reply(status, {"detail": "no"}), Reply(200)]) as srv:
        response, sleeps = _send(srv)
    assert response.status_code == status
    assert len(srv.requests) == 1 and sleeps == []


def test_persistent_5xx_returns_the_last_response():
    with ScriptedServer([Reply(502)]) as srv:
        response, sleeps = _send(srv, retries=2)
    assert response.status_code == 502 and len(srv.requests) == 3 and len(sleeps) == 2


def test_post_body_is_resent_on_retry():
    with ScriptedServer([Reply(503), Reply(201)]) as srv:
        with H.make_client(sleep=Sleeps()) as client:
            r = client.post(srv.url + "/Users", json={"a": 1})
    assert r.status_code == 201
    assert [s.json() for s in srv.requests] == [{"a": 1}, {"a": 1}]


def test_each_discarded_answer_is_closed_and_the_last_one_returned_open():
    class Keeping(httpx.HTTPTransport):
        def __init__(self):
            super().__init__()
            self.answers = []

        def handle_request(self, request):
            self.answers.append(super().handle_request(request))
            return self.answers[-1]

    inner = Keeping()
    with ScriptedServer([Reply(503), Reply(429), Reply(200, {"ok": True})]) as srv:
        with httpx.Client(transport=H.ResilientTransport(inner, sleep=Sleeps())) as client:
            with client.stream("GET", srv.url + "/x") as response:
                assert [a.is_closed for a in inner.answers] == [True, True, False]
                response.read()
    assert response.json() == {"ok": True}


def test_a_streamed_body_is_resent_whole_on_retry():
    with ScriptedServer([Reply(503), Reply(201)]) as srv:
        with H.make_client(sleep=Sleeps()) as client:
            r = client.post(srv.url + "/Users", content=iter([b'{"a": ', b'1}']))
    assert r.status_code == 201
    assert [s.body for s in srv.requests] == [b'{"a": 1}', b'{"a": 1}']


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_transport_error_is_retried_then_raised_without_secrets(caplog):
    caplog.set_level(logging.INFO, logger="provisioner.http")
    url = f"http://user:{SECRET}@127.0.0.1:{_closed_port()}/v2/Users?token={SECRET}"
    sleeps = Sleeps()
    with H.make_client(retries=3, sleep=sleeps) as client, pytest.raises(TargetError) as info:
        client.get(url, headers={"Authorization": f"Bearer {SECRET}"})
    exc = info.value
    assert exc.retryable is True and exc.status is None
    message = str(exc)
    assert "GET http://127.0.0.1:" in message and "/v2/Users" in message
    assert "ConnectError" in message and "4 attempt" in message
    assert SECRET not in message and "token=" not in message and "Authorization" not in message
    assert len(sleeps) == 3
    assert SECRET not in caplog.text
    assert len([r for r in caplog.records if r.levelno == logging.INFO]) == 3


def test_read_timeout_is_retried():
    # seconds of margin both ways: the slow answer is far past the timeout, a prompt one far inside
    with ScriptedServer([Reply(200, delay=4.0), Reply(200, {"ok": 1})]) as srv:
        with H.make_client(timeout=1.5, sleep=Sleeps()) as client:
            r = client.get(srv.url + "/slow")
    assert r.json() == {"ok": 1} and len(srv.requests) >= 2


def test_retries_are_logged_at_info_without_query_or_auth(caplog):
    caplog.set_level(logging.INFO, logger="provisioner.http")
    with ScriptedServer([Reply(503), Reply(200)]) as srv:
        with H.make_client(auth=H.BearerAuth(Secret(SECRET, "env:T")), sleep=Sleeps()) as client:
            client.get(srv.url + f"/Users?filter={SECRET}")
    assert srv.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    [record] = [r for r in caplog.records if r.name == "provisioner.http"]
    assert record.levelno == logging.INFO
    assert "503" in record.getMessage() and f"{srv.url}/Users" in record.getMessage()
    assert SECRET not in caplog.text


class Counting(H.RateLimiter):
    def __init__(self):
        super().__init__(None)
        self.acquired, self.observed = 0, []

    def acquire(self):
        self.acquired += 1

    def observe(self, response):
        self.observed.append(response.status_code)


def test_rate_limiter_is_applied_to_every_attempt():
    limiter = Counting()
    with ScriptedServer([Reply(503), Reply(503), Reply(200)]) as srv:
        _send(srv, limiter=limiter)
    assert limiter.acquired == 3 and limiter.observed == [503, 503, 200]


def test_a_limiter_can_be_chosen_per_request():
    token, api = Counting(), Counting()
    with ScriptedServer([Reply(200)]) as srv:
        choose = H.limiter_by_url({srv.url + "/token": token}, api)
        with H.make_client(srv.url, limiter=choose, sleep=Sleeps()) as client:
            client.post("/token?x=1")
            client.get("/users")
            client.get("/users")
    assert (token.acquired, api.acquired) == (1, 2)


def test_a_request_an_auth_flow_sends_again_is_paced_and_retried_like_any():
    class Renewing(httpx.Auth):
        def auth_flow(self, request):
            request.headers["Authorization"] = "Bearer old"
            response = yield request
            if response.status_code == 401:
                request.headers["Authorization"] = "Bearer new"
                yield request

    limiter = Counting()
    with ScriptedServer([Reply(401), Reply(503), Reply(200)]) as srv:
        with H.make_client(srv.url, auth=Renewing(), limiter=limiter, sleep=Sleeps()) as client:
            assert client.get("/x").status_code == 200
    assert [s.headers["Authorization"] for s in srv.requests] == ["Bearer old", "Bearer new", "Bearer new"]
    assert limiter.acquired == 3 and limiter.observed == [401, 503, 200]


# Retry-After parsing is a pure function: the only place a fake response is fine.
def test_parse_retry_after():
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert H.parse_retry_after("5", now=now) == 5
    assert H.parse_retry_after(" 2.5 ", now=now) == 2.5
    assert H.parse_retry_after("Wed, 01 Jan 2025 12:00:07 GMT", now=now) == 7
    assert H.parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0
    assert H.parse_retry_after("-3", now=now) == 0
    for junk in (None, "", "soon", "nan"):
        assert H.parse_retry_after(junk, now=now) is None


def test_error_for_uses_scim_detail_and_type():
    response = httpx.Response(409, json={"status": "409", "scimType": "uniqueness",
                                         "detail": "One or more of the attribute values are already in use"})
    exc = H.error_for("directory", "create", response)
    assert str(exc) == ("directory: create refused (409 uniqueness): "
                        "One or more of the attribute values are already in use")
    assert exc.status == 409 and not exc.retryable
    assert str(H.error_for("d", "list accounts", httpx.Response(503, text="<html>"))) == \
        "d: list accounts failed (503): Service Unavailable"


# -- auth --------------------------------------------------------------

def test_bearer_and_basic_auth_headers_and_reprs():
    token, password = Secret(SECRET, "env:TOKEN"), Secret("pa55-word-xyz", "file:/p")
    with ScriptedServer([Reply(200)]) as srv:
        with httpx.Client() as c:
            c.get(srv.url, auth=H.BearerAuth(token))
            c.get(srv.url, auth=H.BasicAuth("svc", password))
    assert srv.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert srv.requests[1].headers["Authorization"] == \
        "Basic " + base64.b64encode(b"svc:pa55-word-xyz").decode()
    assert SECRET not in repr(H.BearerAuth(token))
    assert "pa55" not in repr(H.BasicAuth("svc", password))


# -- rate limiter -------------------------------------------------------

def test_rate_limiter_with_fake_clock():
    clock = FakeClock()
    limiter = H.RateLimiter(10, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        limiter.acquire()
    assert clock.now == pytest.approx(101.0)
    clock.now += 5  # idle time does not bank a burst beyond `burst`
    start = clock.now
    limiter.acquire()
    limiter.acquire()
    assert clock.now == pytest.approx(start + 0.1)


def test_rate_limiter_burst():
    clock = FakeClock()
    limiter = H.RateLimiter(10, burst=5, clock=clock, sleep=clock.sleep)
    clock.now += 10
    start = clock.now
    for _ in range(5):
        limiter.acquire()
    assert clock.now == start
    limiter.acquire()
    assert clock.now == pytest.approx(start + 0.1)


def test_rate_limiter_real_time_across_threads():
    limiter = H.RateLimiter(50)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(5)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 0.35  # 20 starts, 19 intervals of 20 ms


def test_unlimited_rate_limiter_never_waits():
    limiter = H.RateLimiter(None, sleep=lambda s: pytest.fail("slept"))
    for _ in range(1000):
        limiter.acquire()


def test_rate_limiter_rejects_nonsense():
    with pytest.raises(ValueError):
        H.RateLimiter(0)


# -- client -------------------------------------------------------------

def test_client_sends_user_agent_and_headers():
    with ScriptedServer([Reply(200)]) as srv:
        with H.make_client(srv.url, headers={"Accept": "application/scim+json"}) as c:
            c.get("/ping")
    assert srv.requests[0].headers["User-Agent"].startswith("provisioner/")
    assert srv.requests[0].headers["Accept"] == "application/scim+json"


def test_tls_off_warns_naming_the_url_every_time(caplog):
    for _ in range(2):
        H.make_client("https://scim.example.com/v2?key=abc", tls_verify=False).close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "https://scim.example.com/v2" in warnings[0].getMessage()
    assert "key=abc" not in caplog.text


def test_missing_ca_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="CA file"):
        H.make_client("https://x", ca_file=tmp_path / "nope.pem")


@pytest.fixture
def tls_server(tmp_path):
    """A real HTTPS server on 127.0.0.1 with a self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_file
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_by_default(tls_server):
    url, _ = tls_server
    with H.make_client(url) as c, pytest.raises(TargetError, match="TLS certificate verification failed") as info:
        c.get("/")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value.__cause__)


def test_a_certificate_that_does_not_verify_is_not_retried(tls_server):
    url, _ = tls_server
    sleeps = Sleeps()
    with H.make_client(url, retries=3, sleep=sleeps) as client, pytest.raises(TargetError) as info:
        client.get("/")
    assert sleeps == [] and info.value.retryable is False
    assert str(info.value).startswith(f"GET {url}/ failed: TLS certificate verification failed (")
    assert "set ca_file to the CA" in str(info.value)


def test_a_request_httpx_refuses_to_send_is_not_retried_and_not_quoted():
    token = Secret("bearer-with-a-line-break\n", "env:T")   # built directly: config trims it
    sleeps = Sleeps()
    with ScriptedServer() as srv, H.make_client(auth=H.BearerAuth(token), retries=3, sleep=sleeps) as client:
        with pytest.raises(TargetError) as info:
            client.get(srv.url + "/x")
    assert sleeps == [] and info.value.retryable is False and srv.requests == []
    assert "bearer-with-a-line-break" not in str(info.value) and "***" in str(info.value)


def test_ca_file_makes_a_private_ca_trusted(tls_server):
    url, cert_file = tls_server
    with H.make_client(url, ca_file=cert_file) as c:
        assert c.get("/").text == "ok"


def test_tls_verify_off_accepts_any_certificate(tls_server):
    url, _ = tls_server
    with H.make_client(url, tls_verify=False) as c:
        assert c.get("/").text == "ok"


def test_safe_url():
    assert H.safe_url("https://u:p@h.example:8443/a/b?x=1#f") == "https://h.example:8443/a/b"
    assert H.safe_url("http://h/v2/Users") == "http://h/v2/Users"


def test_header_rate_limiter_paces_to_the_announced_limit_and_waits_out_a_reset():
    from provisioner.http import HeaderRateLimiter
    now, slept = [100.0], []
    limiter = HeaderRateLimiter(None, share=0.9, clock=lambda: now[0], sleep=slept.append)

    def answer(status=200, **headers):
        limiter.observe(httpx.Response(status, headers=headers))

    answer(**{"X-RateLimit-Limit-Second": "20", "RateLimit-Remaining": "19", "RateLimit-Reset": "1"})
    assert limiter.rate == pytest.approx(18)
    limiter.acquire(); limiter.acquire()
    assert slept == [pytest.approx(1 / 18)]
    answer(**{"RateLimit-Limit": "20", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"})
    limiter.acquire()
    assert slept[-1] == pytest.approx(1.0)      # nothing starts before the window resets
    capped = HeaderRateLimiter(5, clock=lambda: now[0], sleep=slept.append)
    capped.observe(httpx.Response(200, headers={"X-RateLimit-Limit-Second": "150"}))
    assert capped.rate == 5                     # the configured rate_limit stays a ceiling
