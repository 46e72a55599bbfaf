"""The OneCloud connector against the OneCloud emulator on a real loopback port."""

from __future__ import annotations

import logging

import pytest

from conftest import ONECLOUD_SECRET, ONECLOUD_TENANT
from fake_clock import FakeClock
from provisioner.errors import AlreadyExists, ConfigError, TargetError
from provisioner.model import normalize, same_value
from provisioner.connectors.onecloud.emulator import OneCloudOptions
from provisioner.sandbox.server import Faults
from provisioner.secrets import Secret
from provisioner.connectors.onecloud.target import OneCloudTarget, parse_skills, roles_text

WORK = 'phoneNumbers[type eq "work"].value'
PATHS = ["userName", "name.givenName", "name.familyName", "emails[0].value", "title", "timezone",
         WORK, "roles", "team", "skills"]


def connect(emulator, paths=PATHS, secret=ONECLOUD_SECRET, **kwargs) -> OneCloudTarget:
    return OneCloudTarget("onecloud", emulator.base_url, paths=paths, client_id="admin",
                          client_secret=Secret(secret, "env:ONECLOUD_SECRET"), tenant=ONECLOUD_TENANT,
                          **kwargs)


def person(login, **extra):
    return {"userName": login, "name.givenName": "Ada", "name.familyName": "Lovelace",
            "emails[0].value": f"{login}@example.com", "active": True, **extra}


@pytest.fixture
def target(onecloud):
    with connect(onecloud) as t:
        yield t


def test_create_read_update_disable_enable(target, onecloud):
    made = target.create(person("ada", title="Agent", roles="Agent", team="Customer Service",
                                skills="Support:90", **{WORK: "555-0101"}))
    assert target.link_data(made) == {"extension": "2002"}    # 2001 is the API user's
    got = target.get_account(made.id)
    assert got.attrs == {**person("ada"), "title": "Agent", "timezone": None, WORK: "555-0101",
                         "roles": "Agent", "team": "Customer Service", "skills": "Support:90"}
    target.modify(got, {"title": "Team Lead", "roles": "Agent, Supervisor", "team": "Management",
                        "skills": "Support:100, Billing:50", WORK: None})
    got = target.get_account(made.id)
    assert (got.attrs["title"], got.attrs["roles"], got.attrs["team"], got.attrs["skills"], got.attrs[WORK]) \
        == ("Team Lead", "Agent, Supervisor", "Management", "Billing:50, Support:100", None)
    assert target.link_data(got) == {"extension": "2002"}     # kept through the phone-number change
    target.modify(got, {"active": False})
    assert target.get_account(made.id).active is False
    target.modify(target.get_account(made.id), {"active": True})
    assert target.get_account(made.id).active is True
    patches = [p for m, p, _ in onecloud.requests if m == "PATCH"]
    assert len(patches) == 3 and not [m for m, _, _ in onecloud.requests if m == "DELETE"]


def test_list_modes_give_the_same_accounts_and_say_which_was_used(onecloud_factory, caplog):
    caplog.set_level(logging.INFO)
    for paging in (True, False):
        emulator = onecloud_factory(OneCloudOptions(client_secret=ONECLOUD_SECRET, tenant=ONECLOUD_TENANT,
                                                    scim_paging=paging))
        with connect(emulator, concurrency=3) as t:
            for n in range(5):
                t.create(person(f"user{n}"))
            accounts = t.list_accounts()
            assert sorted(a.attrs["userName"] for a in accounts) == ["admin"] + [f"user{n}" for n in range(5)]
            assert t.list_mode_used == ("scim" if paging else "directory")
    assert "via SCIM paging" in caplog.text
    assert "via the phone directory and one userName look-up per user" in caplog.text


def test_forced_list_mode_and_bad_list_mode(onecloud):
    with connect(onecloud, list_mode="directory") as t:
        assert [a.attrs["userName"] for a in t.list_accounts()] == ["admin"]
        assert t.list_mode_used == "directory"
    with pytest.raises(ConfigError, match="list_mode"):
        connect(onecloud, list_mode="all")


def test_roles_as_strings_or_objects_compare_equal(onecloud_factory):
    views = []
    for objects in (False, True):
        emulator = onecloud_factory(OneCloudOptions(client_secret=ONECLOUD_SECRET, tenant=ONECLOUD_TENANT,
                                                    roles_as_objects=objects))
        with connect(emulator) as t:
            made = t.create(person("ada", roles="Supervisor, Agent"))
            views.append(t.get_account(made.id).attrs["roles"])
    assert views == ["Agent, Supervisor", "Agent, Supervisor"]
    assert roles_text([{"value": "Agent"}, "Supervisor"]) == roles_text(["Supervisor", "Agent"])
    # the engine's own comparison treats SCIM {"value": x} entries as x
    assert same_value([{"value": "Agent"}, {"value": "Supervisor"}], ["Supervisor", "Agent"])
    assert normalize([{"value": "Agent"}]) == normalize(["Agent"])


def test_token_expiry_mid_run(onecloud_factory):
    clock = FakeClock()   # the server's: its tokens die when the test says
    emulator = onecloud_factory(faults=Faults(token_lifetime=60, advertised_lifetime=3600), clock=clock)
    with connect(emulator) as t:
        first = t.create(person("ada"))
        clock.advance(61)
        second = t.create(person("bob"))
        t.modify(t.get_account(first.id), {"title": "Agent"})
        assert {a.id for a in t.list_accounts()} >= {first.id, second.id}
    # every 401 (one at least, after the sleep) cost exactly one new token, and nothing failed
    refused = emulator.statuses().count(401)
    assert refused >= 1 and emulator.statuses("/oauth/token") == [200] * (1 + refused)


def test_429_storm_is_ridden_out(onecloud_factory):
    emulator = onecloud_factory(faults=Faults(throttle_rate=0.5, retry_after=0))
    with connect(emulator) as t:
        ids = [t.create(person(f"user{n}")).id for n in range(6)]
        assert {a.id for a in t.list_accounts()} >= set(ids)
    assert emulator.statuses().count(429) >= 8


def test_500s_are_retried(onecloud_factory):
    emulator = onecloud_factory(faults=Faults(error_rate=0.2))
    with connect(emulator, paths=["userName", "title"]) as t:
        made = t.create(person("ada"))
        t.modify(t.get_account(made.id), {"title": "Agent"})
        assert t.get_account(made.id).attrs["title"] == "Agent"
    assert 500 in emulator.statuses()


def test_duplicate_username_on_create_and_on_rename(target):
    target.create(person("ada"))
    bob = target.create(person("bob"))
    with pytest.raises(AlreadyExists) as info:
        target.create(person("ADA"))
    assert "another OneCloud user already has this userName" in str(info.value)
    with pytest.raises(TargetError) as info:
        target.modify(target.get_account(bob.id), {"userName": "ada"})
    assert "give this person a different userName in the source" in str(info.value)


def test_unknown_role_and_taken_extension_say_what_to_fix(onecloud):
    ext = 'phoneNumbers[type eq "extension"].value'
    with connect(onecloud, paths=PATHS + [ext]) as t:
        with pytest.raises(TargetError) as info:
            t.create(person("ada", roles="Agent, Wizard"))
        assert "Role not found" in str(info.value) and "create the role there" in str(info.value)
        with pytest.raises(TargetError) as info:
            t.create(person("bob", **{ext: "2001"}))
        assert "the extension is already assigned to another user" in str(info.value)


def test_unknown_team_is_a_plan_time_sentence(target):
    target.list_accounts()      # reads the teams once per run
    assert target.validate({"team": "Customer Service"}) is None
    problem = target.validate({"team": "Customer Servce"})
    assert "team 'Customer Servce' does not exist in OneCloud (did you mean 'Customer Service'?)" in problem
    assert "skills" in target.validate({"skills": "Support:high"})
    assert parse_skills("Support, Billing:70") == {"Support": 100, "Billing": 70}


def test_rename_keeps_the_account_and_reaches_the_user_api_by_the_new_name(target, onecloud):
    made = target.create(person("ada", team="Customer Service"))
    target.modify(target.get_account(made.id), {"userName": "ada.king", "team": "Management"})
    got = target.get_account(made.id)
    assert got.id == made.id and got.attrs["userName"] == "ada.king" and got.attrs["team"] == "Management"
    assert [a.id for a in target.find_accounts("userName", "ADA.KING")] == [made.id]
    assert target.find_accounts("userName", "ada") == []


def test_team_is_read_from_scim_groups_when_shown_else_from_the_user_api(onecloud_factory):
    for groups in (True, False):
        emulator = onecloud_factory(OneCloudOptions(client_secret=ONECLOUD_SECRET, tenant=ONECLOUD_TENANT,
                                                    scim_groups=groups))
        with connect(emulator, paths=["userName", "team"]) as t:
            t.create(person("ada", team="Management"))
            before = len(emulator.requests)
            teams = {a.attrs["userName"]: a.attrs["team"] for a in t.list_accounts()}
        assert teams == {"admin": "Administrators", "ada": "Management"}
        user_api_reads = [p for m, p, _ in emulator.requests[before:] if m == "GET" and "/user/" in p]
        assert len(user_api_reads) == (0 if groups else 2)


def test_wrong_secret_is_refused_without_showing_it(onecloud, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "definitely-wrong-secret-123"
    with connect(onecloud, secret=wrong) as t:
        with pytest.raises(TargetError) as info:
            t.check()
    assert "check client_id, client_secret and the tenant domain" in str(info.value)
    assert wrong not in str(info.value) and wrong not in caplog.text


def test_check_describes_the_tenant(target):
    assert "token accepted; 1 users in the directory" in target.check()


def test_externalid_in_the_mapping_is_refused(onecloud):
    with pytest.raises(ConfigError, match="OneCloud ignores externalId"):
        connect(onecloud, paths=["userName", "externalId"])


def test_a_directory_answer_that_is_not_a_list_is_a_clear_error():
    from provisioner.connectors.onecloud.emulator import OneCloudEmulator

    class Broken(OneCloudEmulator):
        def directory(self, request):
            return 200, {"users": "soon"}

    with Broken(OneCloudOptions(client_secret=ONECLOUD_SECRET, tenant=ONECLOUD_TENANT)).start() as emulator:
        with connect(emulator, list_mode="directory") as t:
            with pytest.raises(TargetError, match="read the directory: the server answered 200 with "
                                                  "something that is not a JSON list"):
                t.list_accounts()


def test_find_by_other_attributes_than_username(target):
    made = target.create(person("ada", title="Agent"))
    assert [a.id for a in target.find_accounts("emails[0].value", "ADA@example.com")] == [made.id]
    assert target.find_accounts("emails[0].value", "nobody@example.com") == []
