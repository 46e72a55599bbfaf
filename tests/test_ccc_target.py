"""The CCC WebServices connector against the CCC emulator on a real loopback port."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from conftest import CCC_CLIENT_ID, CCC_SECRET, CCC_USERNAME
from provisioner.connectors.ccc.auth import CccSignedAuth, decode_parameters, encode_parameters
from provisioner.errors import AlreadyExists, ConfigError, NotFound, TargetError
from provisioner.connectors.ccc.emulator import CccOptions
from provisioner.sandbox.server import Faults
from provisioner.secrets import Secret
from provisioner.connectors.ccc.target import CccTarget

PATHS = ["Username", "FirstName", "LastName", "Email"]


def connect(emulator, secret=CCC_SECRET, **kwargs) -> CccTarget:
    return CccTarget("ccc", emulator.base_url, paths=kwargs.pop("paths", PATHS), client_id=CCC_CLIENT_ID,
                     username=kwargs.pop("username", CCC_USERNAME), secret_key=Secret(secret, "env:CCC_KEY"),
                     **kwargs)


def person(login, **extra):
    return {"Username": login, "FirstName": "Ada", "LastName": "Lovelace", "Email": f"{login}@example.com",
            "active": True, **extra}


@pytest.fixture
def target(ccc):
    with connect(ccc) as t:
        yield t


def test_create_read_update_disable_enable(target, ccc):
    made = target.create(person("ada"))
    assert made.id == "5001" and made.active
    got = target.get_account(made.id)
    assert got.attrs == person("ada")
    target.modify(got, {"FirstName": "Augusta", "Email": None})
    got = target.get_account(made.id)
    assert (got.attrs["FirstName"], got.attrs["Email"]) == ("Augusta", None)
    target.modify(got, {"active": False})
    assert target.get_account(made.id).active is False and ccc.by_unique("ada")["Active"] == 0
    target.modify(target.get_account(made.id), {"active": True, "LastName": "King"})
    assert target.get_account(made.id).attrs == {**person("ada"), "FirstName": "Augusta", "LastName": "King",
                                                 "Email": None}
    # the id goes back as CCC gave it, a number
    assert ccc.agents["5001"]["AgentID"] == 5001
    assert all(p.startswith("/ws/") for _, p, _ in ccc.requests)


def test_created_disabled_find_and_list(target, ccc):
    off = target.create(person("bob", active=False))
    assert off.active is False and ccc.by_unique("bob")["Active"] == 0
    target.create(person("cy"))
    assert sorted(a.attrs["Username"] for a in target.list_accounts()) == ["bob", "cy"]
    assert [a.id for a in target.find_accounts("Username", "BOB")] == [off.id]
    assert target.find_accounts("Username", None) == [] and target.get_account("999") is None


def test_duplicate_and_missing_agent_are_typed_and_quote_ccc(target):
    target.create(person("ada"))
    with pytest.raises(AlreadyExists, match=r"create \(Agent/Add\) refused \(HTTP 400, ResponseCode 409: "
                                            r"Username already exists\)"):
        target.create(person("ADA"))
    ghost = dataclasses.replace(target.list_accounts()[0], id="777", raw={"AgentID": 777})
    with pytest.raises(NotFound, match="ResponseCode 404: Agent not found"):
        target.modify(ghost, {"FirstName": "x"})


def test_a_refusal_inside_http_200_is_an_error_with_code_and_text(ccc_factory):
    options = CccOptions(client_id=CCC_CLIENT_ID, username=CCC_USERNAME, secret_key=CCC_SECRET, soft_errors=True)
    emulator = ccc_factory(options)
    with connect(emulator) as t:
        with pytest.raises(TargetError, match=r"ccc: create \(Agent/Add\) refused \(ResponseCode 400: "
                                              r"Username is required\)"):
            t.create({"FirstName": "Nobody"})
        assert emulator.statuses("/ws/Agent/Add") == [200]
    # a success code the configuration does not list is a refusal too
    with connect(emulator, success_codes=[200]) as t:
        with pytest.raises(TargetError, match="ResponseCode 201"):
            t.create(person("ada"))


def test_check_pings_and_proves_the_credentials(target, ccc):
    assert target.check() == (f"CCC WebServices at {ccc.base_url}/: Ping accepted the signed request as "
                              f"'{CCC_USERNAME}': {{\"Pong\": true}}")
    with connect(ccc, secret="wrong-secret") as bad:
        with pytest.raises(TargetError) as caught:
            bad.check()
    assert caught.value.status == 401 and "ResponseCode 401: invalid AuthToken" in str(caught.value)
    assert "check client_id, username, secret_key and timezone" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)
    with connect(ccc, username="someone-else") as bad:
        with pytest.raises(TargetError, match="unknown AuthUsername"):
            bad.check()


def test_clock_skew_is_refused_and_the_time_zone_counts(ccc):
    late = lambda: datetime.now(timezone.utc) + timedelta(seconds=400)   # noqa: E731
    with connect(ccc, clock=late) as t:
        with pytest.raises(TargetError, match=r"401, ResponseCode 401: RequestDateTime is (399|40\d) s from "
                                              r"the server's time \(allowed: 300 s\)"):
            t.check()
    # a little skew is inside the default 300 s window
    with connect(ccc, clock=lambda: datetime.now(timezone.utc) - timedelta(seconds=60)) as t:
        t.check()
    # the client's local time in the wrong zone is hours off
    with connect(ccc, time_zone="Asia/Kolkata") as t:
        with pytest.raises(TargetError, match="RequestDateTime"):
            t.check()


def test_the_emulator_refuses_a_tampered_body(ccc):
    # signed for one Data, sent with another: the server's recomputed token differs
    auth = CccSignedAuth(CCC_CLIENT_ID, CCC_USERNAME, Secret(CCC_SECRET, "env:CCC_KEY"))
    params = auth.parameters(b'{"Username":"ada"}')
    for fmt in ("text", "form"):
        tampered = {**params, "Data": '{"Username":"eve"}'}
        body, kind = encode_parameters(tampered, fmt)
        answer = httpx.post(f"{ccc.base_url}/ws/Agent/Add", content=body, headers={"Content-Type": kind})
        assert answer.status_code == 401 and answer.json() == {"ResponseCode": 401, "ResponseText": "invalid AuthToken"}
        body, kind = encode_parameters(params, fmt)
        answer = httpx.post(f"{ccc.base_url}/ws/Agent/Add", content=body, headers={"Content-Type": kind})
        assert answer.status_code == 200 and answer.json()["ResponseCode"] == 201
        ccc.agents.clear()
    assert decode_parameters(b"Data = {}\r\n", "text/plain") == {"Data": "{}"}


def test_form_bodies_configured_actions_and_field_names(ccc_factory):
    actions = {"list": "Users/Search", "add": "Users/Create", "disable": "Users/Deactivate",
               "enable": "Users/Activate", "update": "Users/Modify", "ping": "Account/Ping"}
    options = CccOptions(client_id=CCC_CLIENT_ID, username=CCC_USERNAME, secret_key=CCC_SECRET, actions=actions,
                         id_field="UserID", active_field="Enabled", list_key="Users")
    emulator = ccc_factory(options)
    with connect(emulator, body_format="form", actions=actions, id_field="UserID", active_field="Enabled",
                 list_key="Users") as t:
        assert "Account/Ping accepted" in t.check()
        made = t.create(person("ada", active=False))
        t.modify(t.get_account(made.id), {"active": True, "FirstName": "Eve"})
        assert t.get_account(made.id).attrs == {**person("ada"), "FirstName": "Eve"}
    assert {p for _, p, _ in emulator.requests} == {f"/ws/{a}" for a in actions.values()}
    with connect(emulator) as t:   # the default names are not this account's
        with pytest.raises(TargetError, match=r"HTTP 404, ResponseCode 404: unknown resource Agent/List"):
            t.list_accounts()


def test_retries_sign_again_and_bad_configuration(ccc_factory, ccc):
    emulator = ccc_factory(faults=Faults(error_rate=0.5))
    with connect(emulator) as t:
        t.create(person("ada"))
        t.create(person("bob"))   # its first attempt is answered 500; the retry goes through the signing again
    assert emulator.statuses() == [200, 500, 200] and len(emulator.agents) == 2
    with pytest.raises(ConfigError, match="unknown action 'delete'"):
        connect(ccc, actions={"delete": "Agent/Delete"})
    with pytest.raises(ConfigError, match="may not set 'AgentID'"):
        connect(ccc, paths=["AgentID", "Username"])
    with pytest.raises(ConfigError, match="body_format"):
        connect(ccc, body_format="xml")
