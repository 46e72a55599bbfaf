"""http.py's defaults and its sentences: what the transport does with no retry settings,
what it logs and raises, how a server-announced limit is followed, and the
error text taken from a refusal. tests/test_http.py has the retry rules."""

from __future__ import annotations

import datetime as dt
import logging
import re

import httpx
import pytest

from provisioner import http as H
from provisioner.errors import ConfigError, TargetError
from provisioner.secrets import Secret
from scripted_server import Reply, ScriptedServer
from test_http import Sleeps, _closed_port, tls_server  # noqa: F401  (fixture)


def test_a_client_defaults_to_five_retries_half_a_second_doubling_capped_at_thirty():
    with ScriptedServer([Reply(503)]) as srv:
        sleeps = Sleeps()
        with H.make_client(srv.url, sleep=sleeps) as client:
            response = client.get("/x")
    assert response.status_code == 503 and len(srv.requests) == 6 and len(sleeps) == 5
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and 4 <= sleeps[4] <= 8
    with ScriptedServer([Reply(503, headers={"Retry-After": "3600"}), Reply(200)]) as srv:
        sleeps = Sleeps()
        with H.make_client(srv.url, sleep=sleeps) as client:
            client.get("/x")
    assert sleeps == [30]


def test_backoff_doubles_and_jitters_within_the_upper_half():
    for _ in range(50):
        assert 4 <= H.backoff_delay(3, 1, 100) <= 8
        assert 2 <= H.backoff_delay(5, 1, 4) <= 4
    assert max(H.backoff_delay(0, 1, 100) for _ in range(200)) > 0.85


def test_a_retried_answer_is_logged_as_one_sentence(caplog):
    caplog.set_level(logging.INFO, logger="provisioner.http")
    with ScriptedServer([Reply(503, headers={"Retry-After": "2"}), Reply(200)]) as srv:
        with H.make_client(sleep=Sleeps()) as client:
            client.get(srv.url + "/Users?x=1")
    [record] = [r for r in caplog.records if r.name == "provisioner.http"]
    assert record.getMessage() == f"GET {srv.url}/Users answered 503; retry 1 of 5 in 2.00s"


def test_a_transport_error_is_logged_and_raised_as_sentences(caplog):
    caplog.set_level(logging.INFO, logger="provisioner.http")
    url = f"http://127.0.0.1:{_closed_port()}/v2/Users"
    with H.make_client(retries=2, sleep=Sleeps()) as client, pytest.raises(TargetError) as info:
        client.post(url)
    lines = [r.getMessage() for r in caplog.records if r.name == "provisioner.http"]
    assert len(lines) == 2
    for n, line in enumerate(lines, 1):
        assert re.fullmatch(rf"POST {re.escape(url)} failed \(ConnectError\); retry {n} of 2 in \d+\.\d\ds", line)
    assert re.fullmatch(rf"POST {re.escape(url)} failed after 3 attempt\(s\): ConnectError \(.+\)", str(info.value))
    assert info.value.status is None and info.value.retryable


class Refusing(httpx.BaseTransport):
    """A transport failing with an exception that has no message."""

    def handle_request(self, request):
        raise httpx.ReadError("", request=request)


def test_a_transport_error_without_a_message_names_only_its_kind():
    transport = H.ResilientTransport(Refusing(), retries=0, sleep=Sleeps())
    with httpx.Client(transport=transport) as client, pytest.raises(TargetError) as info:
        client.get("http://127.0.0.1:9/x")
    assert str(info.value) == "GET http://127.0.0.1:9/x failed after 1 attempt(s): ReadError"


def test_a_header_limiter_given_to_the_client_follows_the_servers_answers():
    limiter = H.HeaderRateLimiter(None, share=0.5)
    with ScriptedServer([Reply(200, headers={"X-RateLimit-Limit-Second": "8"})]) as srv:
        with H.make_client(limiter=limiter, sleep=Sleeps()) as client:
            client.get(srv.url + "/x")
    assert limiter.rate == 4


def _observed(headers, status=200, **kwargs):
    now, slept = [100.0], []
    limiter = H.HeaderRateLimiter(clock=lambda: now[0], sleep=slept.append, **kwargs)
    limiter.observe(httpx.Response(status, headers=headers))
    return limiter, slept


def test_header_limiter_reads_each_announcement_header():
    assert _observed({"X-RateLimit-Limit-Second": "10"}, share=1)[0].rate == 10
    assert _observed({"RateLimit-Limit": "10"}, share=1)[0].rate == 10
    assert _observed({"RateLimit-Limit": "0.5"}, share=1)[0].rate == 0.5
    assert _observed({"RateLimit-Limit": "0"}, share=1)[0].rate is None
    assert _observed({"RateLimit-Limit": "soon"}, share=1)[0].rate is None
    assert _observed({}, rate=7)[0].rate == 7            # the ceiling, until a server announces less
    assert _observed({}, assumed=20, share=0.5)[0].rate == 10


@pytest.mark.parametrize("headers,status", [
    ({"X-RateLimit-Remaining-Second": "0", "RateLimit-Reset": "3"}, 200),
    ({"RateLimit-Remaining": "0", "RateLimit-Reset": "3"}, 200),
    ({"RateLimit-Reset": "3"}, 429),
])
def test_an_exhausted_window_or_a_429_holds_requests_until_the_reset(headers, status):
    limiter, slept = _observed({"RateLimit-Limit": "100", **headers}, status=status, share=1)
    limiter.acquire()
    assert slept == [pytest.approx(3)]


@pytest.mark.parametrize("headers,status", [
    ({"RateLimit-Remaining": "1", "RateLimit-Reset": "3"}, 200),
    ({"RateLimit-Reset": "3"}, 430),
    ({"RateLimit-Remaining": "0"}, 200),
])
def test_requests_left_in_the_window_are_not_held(headers, status):
    limiter, slept = _observed({"RateLimit-Limit": "100", **headers}, status=status, share=1)
    limiter.acquire()
    assert slept == []


def test_a_rate_below_one_per_second_is_allowed_and_nonsense_is_one_sentence():
    assert H.RateLimiter(0.5).rate == 0.5
    with pytest.raises(ValueError) as err:
        H.RateLimiter(0)
    assert str(err.value) == "rate must be positive (or None for no limit)"


def test_a_late_waker_goes_an_interval_after_the_previous_departure():
    # two callers reserve slots 0.5 and 1.0; the second wakes late, at 2.0, and goes; the first,
    # woken in the same gap, does not go with it but an interval later
    now, slept, calls = [0.0], [], []

    def sleep(seconds):
        calls.append(seconds)
        slept.append(seconds)
        now[0] += seconds
        if len(calls) == 1:
            limiter.acquire()          # the other caller, while this one sleeps
        elif len(calls) == 2:
            now[0] += 1.0              # ... which is woken a second late

    limiter = H.RateLimiter(2, clock=lambda: now[0], sleep=sleep)
    limiter.acquire()                  # goes at once
    limiter.acquire()
    assert slept == [0.5, 0.5, 0.5] and now[0] == pytest.approx(2.5)


def test_an_invalid_url_is_shown_as_such():
    assert H.safe_url("http://[::1") == "<invalid URL>"


def test_retry_after_dates_with_and_without_a_zone():
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert H.parse_retry_after("Wed, 01 Jan 2025 12:00:07 +0100", now=now) == 0
    assert H.parse_retry_after("Wed, 01 Jan 2025 12:00:07 -0000", now=now) == 7
    assert H.parse_retry_after("Wed, 01 Jan 2025 12:00:07", now=now) == 7
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    assert 3000 < H.parse_retry_after(future.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 7200


@pytest.mark.parametrize("body,detail,kind", [
    ({"detail": "d"}, "d", None),
    ({"message": "m", "error_description": "e"}, "m", None),
    ({"error_description": "e", "reason": "r"}, "e", None),
    ({"reason": "r"}, "r", None),
    ({"message": {"message": "nested"}}, "nested", None),
    ({"error": "invalid_grant", "error_description": "bad"}, "bad", "invalid_grant"),
    ({"error": {"code": 5}}, None, None),
    ({"detail": "x" * 400, "scimType": "t" * 100}, "x" * 300, "t" * 60),
    ({"detail": "", "scimType": ""}, None, None),
])
def test_error_detail_reads_the_common_shapes(body, detail, kind):
    assert H.error_detail(httpx.Response(400, json=body)) == (detail, kind)


def test_error_for_says_failed_from_500_and_shows_the_type_only_when_it_adds_something():
    def text(status, body=None):
        response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="")
        return str(H.error_for("t", "update", response))
    assert text(500) == "t: update failed (500): Internal Server Error"
    assert text(499) == "t: update refused (499): no detail given"
    assert text(501) == "t: update failed (501): Not Implemented"
    assert text(400, {"message": "m"}) == "t: update refused (400): m"
    assert text(400, {"error": "kind", "message": "m"}) == "t: update refused (400 kind): m"
    assert text(400, {"error": "bad", "message": "bad"}) == "t: update refused (400): bad"
    exc = H.error_for("t", "update", httpx.Response(503))
    assert exc.retryable is True and H.error_for("t", "update", httpx.Response(400)).retryable is False


def test_client_defaults_and_auth(caplog):
    auth = H.BearerAuth(Secret("client-test-token-1", "env:T"))
    with H.make_client("http://127.0.0.1:9", auth=auth) as client:
        assert client.timeout == httpx.Timeout(30.0) and client.auth is auth
    with H.make_client("http://127.0.0.1:9", timeout=5) as client:
        assert client.timeout == httpx.Timeout(5)
    caplog.set_level(logging.WARNING, logger="provisioner.http")
    H.make_client("https://u:p@h.example/a?x=1", tls_verify=False).close()
    assert caplog.records[-1].getMessage() == (
        "TLS certificate verification is OFF for https://h.example/a: anyone on the network "
        "path can read and change this traffic")


def test_a_ca_file_that_is_not_a_certificate_is_one_sentence(tmp_path):
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError) as err:
        H.make_client("https://h.example", ca_file=tmp_path / "ca.pem")
    assert str(err.value).startswith(f"cannot use CA file {tmp_path / 'ca.pem'}: ")
    assert len(str(err.value)) > len(f"cannot use CA file {tmp_path / 'ca.pem'}: ") + 3
    with pytest.raises(ConfigError) as err:
        H.make_client("https://h.example", ca_file=tmp_path / "none.pem")
    assert str(err.value) == f"cannot use CA file {tmp_path / 'none.pem'}: No such file or directory"


def test_an_unverifiable_certificate_is_named_with_openssls_reason(tls_server):
    url, _ = tls_server
    with H.make_client(url, retries=3, sleep=Sleeps()) as client, pytest.raises(TargetError) as info:
        client.get("/")
    # the self-signed test certificate: OpenSSL's own words, then what to do
    assert re.fullmatch(rf"GET {re.escape(url)}/ failed: TLS certificate verification failed "
                        r"\((self[- ]signed certificate|unable to get local issuer certificate)\): set ca_file "
                        r"to the CA that signed the server's certificate", str(info.value)), str(info.value)


def test_a_header_limiter_paces_to_95_percent_of_the_limit_by_default():
    assert H.HeaderRateLimiter(assumed=20).rate == pytest.approx(19)


def test_the_basic_auth_header_value_is_redacted_though_it_spells_no_password():
    import base64
    import uuid

    from provisioner.secrets import redact
    # a fresh password: redaction's memory is process-wide (and mutmut forks from a process
    # that has run the tests once), so a fixed one could be known before this test registers it
    password = "basic-details-" + uuid.uuid4().hex[:8]
    H.BasicAuth("svc-details", Secret(password, "env:P"))
    wire = base64.b64encode(f"svc-details:{password}".encode()).decode("ascii")
    assert redact(f"Authorization: Basic {wire}") == "Authorization: Basic ***"
