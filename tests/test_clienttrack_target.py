"""The ClientTrack connector against the CTAPI emulator on a real loopback port."""

from __future__ import annotations

import logging
import re

import pytest

from conftest import CLIENTTRACK_API_KEY, CLIENTTRACK_SUBSCRIPTION
from provisioner.errors import ConfigError, NotFound, TargetError
from provisioner.model import Account
from provisioner.secrets import Secret
from provisioner.connectors.clienttrack.target import ClientTrackTarget, encoded_length, literal

PATHS = ["UserName", "FirstName", "LastName", "Email", "Title", "active"]


def connect(emulator, paths=PATHS, subscription=CLIENTTRACK_SUBSCRIPTION, api_key=CLIENTTRACK_API_KEY,
            **kwargs) -> ClientTrackTarget:
    return ClientTrackTarget("ct", emulator.base_url, paths=paths,
                             subscription_key=Secret(subscription, "env:CT_SUBSCRIPTION"),
                             api_key=Secret(api_key, "env:CT_API_KEY"), **kwargs)


def person(login, **extra):
    return {"UserName": login, "FirstName": "Ada", "LastName": "Lovelace",
            "Email": f"{login}@example.com", "active": True, **extra}


def seed(emulator, count, status="Active"):
    for n in range(count):
        emulator.insert({"UserName": f"user{n:03}", "FirstName": "F", "LastName": f"L{n}",
                         "Email": f"user{n:03}@example.com", "ActiveStatus": status})


def crql_pages(emulator) -> list[int]:
    return [s for m, p, s in emulator.requests if p == "/crql"]


def test_create_read_update_disable_enable(clienttrack):
    with connect(clienttrack) as t:
        made = t.create(person("ada", Title="Agent"))
        assert made.id == "1001"
        got = t.get_account(made.id)
        assert got.attrs == {**person("ada"), "Title": "Agent"}
        t.modify(got, {"Title": "Team Lead", "LastName": None})
        got = t.get_account(made.id)
        assert (got.attrs["Title"], got.attrs["LastName"]) == ("Team Lead", None)
        t.modify(got, {"active": False})
        assert clienttrack.rows[1001]["ActiveStatus"] == "Inactive"
        assert t.get_account(made.id).active is False
        t.modify(t.get_account(made.id), {"active": True})
        assert clienttrack.rows[1001]["ActiveStatus"] == "Active"
        assert t.get_account("999") is None
        with pytest.raises(NotFound):
            t.modify(Account(id="999", attrs=got.attrs), {"Title": "x"})
        assert [a.attrs["UserName"] for a in t.find_accounts("UserName", "ADA")] == ["ada"]
        assert t.find_accounts("UserName", "o'brien") == []
        assert t.find_accounts("UserName", None) == []
    assert not [m for m, _, _ in clienttrack.requests if m == "DELETE"]


def test_disable_uses_the_configured_status_field_and_values(clienttrack_factory):
    emulator = clienttrack_factory(columns=("UserID", "UserName", "Status"), rows=[
        {"UserName": "a", "Status": "Enabled"}, {"UserName": "b", "Status": "Disabled"}])
    with connect(emulator, paths=["UserName", "active"], status_field="Status",
                 active_value="Enabled", inactive_value="Disabled") as t:
        a, b = sorted(t.list_accounts(), key=lambda x: x.attrs["UserName"])
        assert (a.active, b.active) == (True, False)
        t.modify(a, {"active": False})
        t.modify(b, {"active": True})
        made = t.create({"UserName": "c"})
    assert [r["Status"] for r in emulator.rows.values()] == ["Disabled", "Enabled", "Enabled"]
    assert made.active is True


@pytest.mark.parametrize("paging", ["top", "keyset"])
def test_multi_page_listing_in_both_paging_modes(clienttrack_factory, paging, caplog):
    caplog.set_level(logging.INFO)
    emulator = clienttrack_factory()
    seed(emulator, 23)
    with connect(emulator, page_size=5, paging=paging) as t:
        accounts = t.list_accounts()
    assert sorted(a.attrs["UserName"] for a in accounts) == [f"user{n:03}" for n in range(23)]
    assert len({a.id for a in accounts}) == 23
    assert len(crql_pages(emulator)) == 5           # 5+5+5+5+3: the short page ends it
    assert "read 23 accounts" in caplog.text and f"({paging} paging)" in caplog.text


@pytest.mark.parametrize("paging", ["top", "keyset"])
def test_exact_multiple_of_the_page_size_and_empty_table(clienttrack_factory, paging):
    emulator = clienttrack_factory()
    with connect(emulator, page_size=5, paging=paging) as t:
        assert t.list_accounts() == []                 # CTAPI's bare {} for no rows
        seed(emulator, 10)
        assert len(t.list_accounts()) == 10


@pytest.mark.parametrize("quirk,count,error", [
    ("top_first", 12, 'page 2 was empty although rows after UserID 1005 exist: .* set paging = "keyset"'),
    ("repeat", 7, 'page 2 repeated page 1: .* set paging = "keyset"')])
def test_top_paging_that_loses_rows_is_detected_and_keyset_reads_them(clienttrack_factory, quirk, count, error):
    emulator = clienttrack_factory(paging_quirk=quirk)
    seed(emulator, count)
    with connect(emulator, page_size=5) as t:
        with pytest.raises(TargetError, match=error):
            t.list_accounts()
    with connect(emulator, page_size=5, paging="keyset") as t:
        assert len(t.list_accounts()) == count


def test_top_quirk_is_harmless_when_everything_fits_one_page(clienttrack_factory):
    emulator = clienttrack_factory(paging_quirk="top_first")
    seed(emulator, 4)
    with connect(emulator, page_size=5) as t:
        assert len(t.list_accounts()) == 4


@pytest.mark.parametrize("subscription,api_key", [
    ("", CLIENTTRACK_API_KEY), ("wrong", CLIENTTRACK_API_KEY), (CLIENTTRACK_SUBSCRIPTION, "wrong")])
def test_missing_or_wrong_key_is_401_and_never_retried(clienttrack, subscription, api_key):
    with connect(clienttrack, subscription=subscription, api_key=api_key) as t:
        with pytest.raises(TargetError) as caught:
            t.check()
        assert caught.value.status == 401 and caught.value.retryable is False
        assert "check the subscription_key and api_key" in str(caught.value)
        with pytest.raises(TargetError):
            t.list_accounts()
    assert clienttrack.statuses() == [401, 401]           # one request each: no retry
    assert "wrong" not in str(caught.value)


def test_502_bursts_are_retried(clienttrack):
    seed(clienttrack, 3)
    with connect(clienttrack, page_size=2) as t:
        clienttrack.bad_gateway(2)
        assert len(t.list_accounts()) == 3
        clienttrack.bad_gateway(1)
        t.modify(t.get_account("1001"), {"active": False})
    assert clienttrack.statuses().count(502) == 3
    assert clienttrack.rows[1001]["ActiveStatus"] == "Inactive"


def test_check_names_the_environment_and_the_rejected_column(clienttrack):
    with connect(clienttrack, org_id="42") as t:
        line = t.check()
    assert "environment 'ClientTrack sandbox'" in line and "table Users readable" in line
    with connect(clienttrack, paths=["UserName", "Nickname"]) as t:
        with pytest.raises(TargetError, match=r"check refused \(400\): Invalid column name 'Nickname'\."):
            t.check()
    with connect(clienttrack, table="Staff") as t:
        with pytest.raises(TargetError, match="Invalid object name 'Staff'"):
            t.check()


def test_column_map_and_org_header(clienttrack_factory):
    emulator = clienttrack_factory(org_ids=("42",))
    with connect(emulator, paths=["userName", "active"], columns={"userName": "UserName"}, org_id="42") as t:
        made = t.create({"userName": "x"})
        assert made.attrs == {"userName": "x", "active": True}
        assert emulator.rows[1001]["UserName"] == "x"
    with connect(emulator, paths=["userName"], columns={"userName": "UserName"}, org_id="7") as t:
        with pytest.raises(TargetError, match="401"):
            t.list_accounts()


def test_query_length_limit_is_refused_when_opened(clienttrack):
    columns = {f"attr{n}": f"A_Rather_Long_Column_Name_Number_{n}" for n in range(60)}
    with pytest.raises(ConfigError, match=r"targets\.ct: the CRQL list query would be \d+ characters "
                                          r"URL-encoded, over CTAPI's 2048"):
        connect(clienttrack, paths=list(columns), columns=columns)
    with pytest.raises(ConfigError, match="not a ClientTrack column"):
        connect(clienttrack, paths=["name.givenName"])
    with pytest.raises(ConfigError, match="page_size"):
        connect(clienttrack, page_size=501)
    with connect(clienttrack) as t:
        with pytest.raises(TargetError, match="over CTAPI's 2048"):
            t.find_accounts("UserName", "x" * 2000)
    assert clienttrack.requests == []


def test_literals_and_encoded_length():
    assert literal(5) == "5" and literal("o'brien") == "'o''brien'" and literal(True) == "'True'"
    assert encoded_length("SELECT TOP 1 a FROM t") == len("SELECT%20TOP%201%20a%20FROM%20t")


def test_secrets_stay_out_of_errors_and_repr(clienttrack):
    with connect(clienttrack, api_key="wrong-secret-api-key") as t:
        with pytest.raises(TargetError) as caught:
            t.check()
        assert "wrong-secret-api-key" not in str(caught.value) + repr(t._auth)


def test_configured_write_paths(clienttrack_factory):
    emulator = clienttrack_factory()
    # a deployment whose objects live elsewhere: both write paths are configuration
    emulator._routes += [(m, re.compile(r"/api/v2" + p + r"/?\Z"), h) for m, p, h in [
        ("POST", r"/cto/(?P<table>[^/]+)", emulator.cto_insert),
        ("PUT", r"/cto/(?P<table>[^/]+)/(?P<id>[^/]+)", emulator.cto_update)]]
    with connect(emulator, create_path="/api/v2/cto/{table}", update_path="/api/v2/cto/{table}/{id}") as t:
        made = t.create(person("ada"))
        t.modify(made, {"active": False})
        assert t.get_account(made.id).active is False
    assert [(m, p) for m, p, _ in emulator.requests] == [
        ("POST", "/api/v2/cto/Users"), ("PUT", "/api/v2/cto/Users/1001"), ("GET", "/cto/Users/1001")]
    with pytest.raises(ConfigError, match=r"targets\.ct\.update_path: must start with \"/\" and contain \{id\}"):
        connect(emulator, update_path="/cto/{table}")
