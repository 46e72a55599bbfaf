"""ClientCredentialsAuth alone, against the OneCloud emulator's token endpoint."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest

from conftest import ONECLOUD_SECRET, ONECLOUD_TENANT
from fake_clock import FakeClock
from provisioner.auth.oauth_client_credentials import ClientCredentialsAuth
from provisioner.errors import TargetError
from provisioner.sandbox.server import Faults
from provisioner.secrets import Secret, redact

API = "/configapi/v2"


def auth_for(emulator, secret=ONECLOUD_SECRET, scope=ONECLOUD_TENANT, client=None, clock=time.monotonic):
    return ClientCredentialsAuth(emulator.base_url + API + "/oauth/token", "admin",
                                 Secret(secret, "env:ONECLOUD_SECRET"), extra={"scope": scope},
                                 client=client, clock=clock)


def test_one_token_serves_many_requests_and_threads(onecloud):
    auth = auth_for(onecloud)
    with httpx.Client(base_url=onecloud.base_url, auth=auth) as client:
        results = []
        threads = [threading.Thread(target=lambda: results.append(client.get(API + "/team").status_code))
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [200] * 8
    assert auth.fetches == 1 and onecloud.statuses("/oauth/token") == [200]


def test_renews_before_expiry_without_a_401(onecloud_factory):
    # the client and the server share a clock the test moves: no sleeping, no race with the load
    clock = FakeClock()
    emulator = onecloud_factory(faults=Faults(token_lifetime=100), clock=clock)   # announced: "100"
    auth = auth_for(emulator, clock=clock)
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        assert client.get(API + "/team").status_code == 200
        clock.advance(89)    # before the renewal point (90 % of the lifetime): kept
        assert client.get(API + "/team").status_code == 200
        assert auth.fetches == 1
        clock.advance(2)     # past the renewal point, before the expiry
        assert client.get(API + "/team").status_code == 200
        assert auth.fetches == 2
        clock.advance(10)    # the first token would be dead by now; the renewed one is not
        assert client.get(API + "/team").status_code == 200
    assert auth.fetches == 2
    assert 401 not in emulator.statuses("/team")


def test_renews_once_on_401_when_the_token_dies_early(onecloud_factory):
    clock = FakeClock()
    emulator = onecloud_factory(faults=Faults(token_lifetime=10, advertised_lifetime=3600), clock=clock)
    auth = auth_for(emulator, clock=clock)
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        assert client.get(API + "/team").status_code == 200
        clock.advance(11)    # dead at the server; the client still believes in its hour
        assert client.get(API + "/team").status_code == 200
    assert auth.fetches == 2
    assert emulator.statuses("/team") == [200, 401, 200]


def test_a_second_401_is_returned_not_looped(onecloud):
    auth = auth_for(onecloud)
    with httpx.Client(base_url=onecloud.base_url, auth=auth) as client:
        client.get(API + "/team")
        onecloud.faults.token_lifetime = 0     # every new token is dead on arrival
        onecloud.revoke_tokens()
        assert client.get(API + "/team").status_code == 401
    assert onecloud.statuses("/team") == [200, 401, 401]


def test_refused_credentials_say_what_to_check_without_the_secret(onecloud, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-value-77"
    auth = auth_for(onecloud, secret=wrong)
    with pytest.raises(TargetError) as info:
        auth.token()
    assert "check client_id, client_secret and the tenant domain" in str(info.value)
    assert wrong not in str(info.value) and wrong not in caplog.text and wrong not in repr(auth)
    with pytest.raises(TargetError, match="invalid_scope"):
        auth_for(onecloud, scope="elsewhere.example").token()


def test_tokens_are_redacted(onecloud):
    token = auth_for(onecloud).token()
    assert token not in redact(f"Authorization: Bearer {token}")


def test_token_endpoint_429_and_500_are_retried(onecloud_factory):
    emulator = onecloud_factory(faults=Faults(throttle_rate=0.5, retry_after=0))
    httpx.get(emulator.base_url + API + "/team")     # request 1 passes, so 2 (the token) is throttled
    auth = auth_for(emulator)
    assert auth.token()
    assert emulator.statuses("/oauth/token") == [429, 200]
