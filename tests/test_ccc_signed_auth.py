"""The CCC signing scheme alone: the token recomputed by hand from the seed's recipe, fixed clock."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from urllib.parse import parse_qs

import httpx
import pytest

from provisioner.connectors.ccc.auth import CccSignedAuth, decode_parameters, encode_parameters
from provisioner.secrets import Secret

NOW = datetime(2026, 1, 15, 23, 30, 5, tzinfo=timezone.utc)
DATA = b'{"Username":"ada@example.com","FirstName":"Ada"}'


def by_hand(data: bytes, request_datetime: str) -> str:
    # seed 000, "Authentication Protocol", steps 1-4, written out again independently
    token1 = hashlib.sha256(data).hexdigest()
    secret_hash = hashlib.sha256(b"s3cret-key").hexdigest()
    token2 = hashlib.sha256(f"77:agent-api:{secret_hash}".encode()).hexdigest()
    return hashlib.sha256(f"{token1}:{token2}:{request_datetime}".encode()).hexdigest()


def signed(auth: CccSignedAuth, data: bytes = DATA) -> httpx.Request:
    request = httpx.Request("POST", "https://api.ccc.uno/ws/Agent/Add", content=data,
                            headers={"Content-Type": "application/json"})
    flow = auth.auth_flow(request)
    out = next(flow)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))
    return out


def auth(**kwargs) -> CccSignedAuth:
    return CccSignedAuth("77", "agent-api", Secret("s3cret-key", "env:CCC_KEY"), clock=lambda: NOW, **kwargs)


def test_text_body_carries_the_four_parameters_and_the_hand_computed_token():
    out = signed(auth(time_zone="America/New_York"))
    # 23:30:05 UTC is 18:30:05 in New York in January
    assert out.headers["Content-Type"].startswith("text/plain")
    assert out.content == (b"AuthUsername = agent-api\r\n"
                           + f"AuthToken = {by_hand(DATA, '2026-01-15 18:30:05')}\r\n".encode()
                           + b"RequestDateTime = 2026-01-15 18:30:05\r\n"
                           + b"Data = " + DATA + b"\r\n")
    assert out.headers["Content-Length"] == str(len(out.content))
    assert out.url == "https://api.ccc.uno/ws/Agent/Add" and out.method == "POST"


def test_form_body_and_the_zone_changes_the_date():
    out = signed(auth(time_zone="Asia/Tokyo", body_format="form"))
    assert out.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(out.content.decode()).items()}
    assert form == {"AuthUsername": "agent-api", "RequestDateTime": "2026-01-16 08:30:05",
                    "Data": DATA.decode(), "AuthToken": by_hand(DATA, "2026-01-16 08:30:05")}


def test_a_different_body_or_secret_gives_a_different_token():
    one = decode_parameters(signed(auth()).content, "text/plain")
    other = decode_parameters(signed(auth(), DATA.replace(b"Ada", b"Eve")).content, "text/plain")
    assert one["AuthToken"] == by_hand(DATA, "2026-01-15 23:30:05")
    assert other["AuthToken"] != one["AuthToken"]
    wrong = CccSignedAuth("77", "agent-api", Secret("other-key", "env:X"), clock=lambda: NOW)
    assert decode_parameters(signed(wrong).content, "text/plain")["AuthToken"] != one["AuthToken"]


def test_the_secret_is_nowhere_in_the_request_or_repr():
    a = auth()
    out = signed(a)
    assert b"s3cret-key" not in out.content and "s3cret-key" not in str(out.headers) + repr(a)


def test_line_breaks_cannot_reach_a_text_body_and_formats_round_trip():
    with pytest.raises(ValueError, match="line break"):
        encode_parameters({"Data": '{"a":\n1}'}, "text")
    params = {"AuthUsername": "u = v", "Data": '{"x":"a=b & c"}'}
    for fmt in ("text", "form"):
        body, kind = encode_parameters(params, fmt)
        assert decode_parameters(body, kind) == params
    with pytest.raises(ValueError, match="body_format"):
        auth(body_format="json")


def test_no_zone_means_the_hosts_local_zone(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        out = signed(auth())
    finally:
        monkeypatch.undo()
        time.tzset()
    # 23:30:05 UTC is 08:30:05 the next day in Tokyo, the process's local zone
    assert decode_parameters(out.content, out.headers["Content-Type"])["RequestDateTime"] == "2026-01-16 08:30:05"


def test_a_retried_request_is_signed_again_for_its_own_moment():
    from datetime import timedelta

    from provisioner.http import make_client
    from scripted_server import Reply, ScriptedServer
    ticks = iter(range(100))
    ticking = CccSignedAuth("77", "agent-api", Secret("s3cret-key", "env:CCC_KEY"),
                            clock=lambda: NOW + timedelta(seconds=next(ticks)))
    with ScriptedServer([Reply(503), Reply(200)]) as srv, \
            make_client(srv.url, sleep=lambda _: None) as client:
        assert client.post("/ws/Agent/Add", content=DATA, auth=ticking).status_code == 200
    first, second = (decode_parameters(s.body, s.headers["Content-Type"]) for s in srv.requests)
    assert first["Data"] == second["Data"] == DATA.decode()
    assert first["RequestDateTime"] != second["RequestDateTime"]
    assert second["AuthToken"] == by_hand(DATA, second["RequestDateTime"])
