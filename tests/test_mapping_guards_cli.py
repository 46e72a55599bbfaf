"""Issue 13: nothing wrong is ever applied. The real CLI against scim2-server (and slapd):
a mapping reading what no source provides, a list where one value is wanted, an
attribute the server owns, a required attribute emptied, and mass updates and clears."""

from __future__ import annotations

import pytest

from test_end_to_end import ADA, GRACE, Workspace, ops, row
from test_ldap_source import PASSWORD_ENV, cli
from provisioner.sandbox.slapd import READER_DN, SUFFIX


@pytest.fixture
def ws(tmp_path, scim_server):
    workspace = Workspace(tmp_path, scim_server)
    yield workspace
    workspace.admin.close()


def set_mapping(ws, old: str, new: str) -> None:
    path = ws.root / "mappings" / "directory.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- point 4: a source attribute nobody provides ------------------------------

def test_a_mapping_reading_an_unknown_column_is_exit_2_and_changes_nothing(ws):
    ws.people(ADA, GRACE)
    ws.run("reconcile", "--yes")
    before = {u: d.get("title") for u, d in ws.users().items()}
    assert before == {"ada@example.com": "Agent", "grace.hopper@example.com": "Team Lead"}

    set_mapping(ws, 'title = { from = "title" }', 'title = { from = "titel" }')
    sentence = ("mappings/directory.toml: attributes.title: no source provides 'titel'; "
                "did you mean 'title'?")
    for args in (["check"], ["check", "--offline"], ["plan"], ["reconcile", "--yes"]):
        result = ws.run(*args, check=2)
        assert sentence in result.stderr, (args, result.stderr)
    assert {u: d.get("title") for u, d in ws.users().items()} == before


def test_a_scope_or_template_naming_an_unknown_column_is_exit_2(ws):
    ws.people(ADA)
    set_mapping(ws, "scope = 'department eq \"Support\"'", "scope = 'departmnet eq \"Support\"'")
    result = ws.run("plan", check=2)
    assert ("mappings/directory.toml: scope: no source provides 'departmnet'; did you mean "
            "'department'?") in result.stderr
    set_mapping(ws, "scope = 'departmnet eq \"Support\"'", "scope = 'department eq \"Support\"'")
    set_mapping(ws, 'title = { from = "title" }', 'title = { template = "{title} ({grade})" }')
    result = ws.run("plan", check=2)
    assert "attributes.title: no source provides 'grade' (the sources provide: " in result.stderr
    assert ws.users() == {}


# --- point 5: attributes the server owns -------------------------------------

def test_a_mapping_may_not_write_what_the_server_owns(ws):
    ws.people(ADA)
    set_mapping(ws, 'title = { from = "title" }', 'title = { from = "title" }\nid = "employee_id"\n'
                '"meta.created" = { constant = "2020-01-01" }')
    for args in (["check", "--offline"], ["plan"], ["reconcile", "--yes"]):
        result = ws.run(*args, check=2)
        assert ("mappings/directory.toml: attributes.id: id is set by target directory itself and "
                "cannot be written; remove it from the mapping") in result.stderr
        assert "attributes.meta.created: meta is set by target directory itself" in result.stderr
    assert ws.users() == {}


def test_emptying_a_required_attribute_is_a_manual_item_never_sent(ws):
    ws.people(ADA, GRACE)
    ws.run("reconcile", "--yes")
    ws.people(row("E0001", "Ada", "Lovelace", ""), GRACE)
    plan = ws.plan()
    assert ops(plan) == [("manual", "E0001")]
    item = plan["items"][0]
    assert item["changes"]["userName"] == {"from": "ada@example.com", "to": None}
    assert "userName is required on directory" in item["reason"] and "email" in item["reason"]
    ws.run("apply", plan["plan_id"], "--yes")
    assert ws.users()["ada@example.com"]["emails"][0]["value"] == "ada@example.com"


# --- point 6: mass updates and clears -------------------------------------------

TEN = [row(f"E{n:04d}", "P", str(n), f"p{n}@example.com") for n in range(10)]


def test_a_whole_target_title_wipe_is_blocked_until_allowed(ws):
    ws.people(*TEN)
    ws.run("reconcile", "--yes")
    ws.people(*(r.replace(",Agent,", ",,") for r in TEN))
    plan = ws.plan(check=3)
    summary = plan["targets"]["directory"]
    assert summary["blocked"] is True and summary["update"] == 10
    assert "10 updates emptying a value that is set (title: 10) are 100.0% of 10 accounts, over max_clear_percent = 5" in summary["block_reason"]
    refused = ws.run("reconcile", "--yes", check=3)
    assert "blocked" in refused.stdout
    assert all(u.get("title") == "Agent" for u in ws.users().values())

    ws.run("apply", plan["plan_id"], "--yes", check=3)
    ws.run("apply", plan["plan_id"], "--yes", "--allow-mass-change")
    assert all("title" not in u for u in ws.users().values())


def test_mass_updates_are_blocked_and_a_small_target_is_not_a_mass(ws):
    ws.people(*TEN)
    ws.run("reconcile", "--yes")
    ws.people(*(r.replace(",Agent,", ",Senior Agent,") for r in TEN[:8]), *TEN[8:])
    plan = ws.plan(check=3)
    assert ("8 updates are 80.0% of 10 accounts, over max_update_percent = 30"
            in plan["targets"]["directory"]["block_reason"])
    ws.write_config(policy="max_update_percent = 100")
    assert ws.plan()["targets"]["directory"]["blocked"] is False


def test_one_leaver_among_five_accounts_is_not_a_mass_disable(ws):
    ws.people(*TEN[:5])
    ws.run("reconcile", "--yes")
    ws.people(*TEN[:4])
    plan = ws.plan()
    assert ops(plan) == [("disable", "E0004")] and plan["status"] == "pending"
    ws.run("apply", plan["plan_id"], "--yes")
    assert sum(not u["active"] for u in ws.users().values()) == 1


# --- point 3: LDAP multi-valued mail to userName (real slapd) -------------------

def ldap_workspace(root, slapd, scim_url: str, user_name: str) -> None:
    (root / "directory.toml").write_text(f"""
correlate = ["userName"]
[attributes]
userName = {user_name}
"name.familyName" = "family_name"
""")
    (root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"
[source]
type = "ldap"
url = "{slapd.url}"
ca_file = "{slapd.ca_file}"
bind_dn = "{READER_DN}"
password = "env:{PASSWORD_ENV}"
base_dn = "ou=people,{SUFFIX}"
filter = "(|(uid=p000010)(uid=p000011))"
preset = "openldap"
attributes = {{ mail = "email", givenName = "given_name", sn = "family_name" }}
multi_valued = ["email"]
emails = ["email"]
[targets.dir]
type = "scim"
base_url = "{scim_url}"
token = "env:T_SCIM_TOKEN"
mapping = "directory.toml"
""")


def scim_users(scim_server) -> dict:
    import httpx
    from conftest import SCIM_TOKEN
    body = httpx.get(scim_server.base_url + "/Users", params={"count": 100},
                     headers={"Authorization": f"Bearer {SCIM_TOKEN}"}).json()
    return {u["userName"]: u for u in body.get("Resources", [])}


def test_ldap_multi_valued_mail_needs_a_pick_to_become_the_user_name(tmp_path, slapd, scim_server):
    ldap_workspace(tmp_path, slapd, scim_server.base_url, '"email"')
    for args in (["check"], ["plan"], ["reconcile", "--yes"]):
        result = cli(tmp_path, *args)
        assert result.returncode == 2, (args, result.stdout + result.stderr)
        assert ("directory.toml: attributes.userName: source attribute 'email' is multi-valued and "
                "userName takes one value: add pick = \"first\"") in result.stderr
    assert scim_users(scim_server) == {}

    ldap_workspace(tmp_path, slapd, scim_server.base_url, '{ from = "email", pick = "first" }')
    assert cli(tmp_path, "check").returncode == 0
    done = cli(tmp_path, "reconcile", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(scim_users(scim_server)) == ["p000010@example.org", "p000011@example.org"]


def test_ldap_multi_valued_mail_matching_a_pattern(tmp_path, slapd, scim_server):
    ldap_workspace(tmp_path, slapd, scim_server.base_url,
                   '{ from = "email", matching = "*.ALIAS@example.org" }')
    done = cli(tmp_path, "reconcile", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    # p000011 has no alias: no userName, so a manual item, never a create with a list
    assert sorted(scim_users(scim_server)) == ["p000010.alias@example.org"]
    assert "userName has no value" in done.stdout
