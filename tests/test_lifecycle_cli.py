"""The account's whole life through the real CLI against a real scim2-server on 127.0.0.1:
disable -> grace period -> delete, rehires, drift per attribute, orphans, plans as of a day."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from test_end_to_end import Workspace, ops, row

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TODAY = date.today()   # the CLI's own day (policy.timezone is UTC, as is this machine)


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


@pytest.fixture
def ws(tmp_path, scim_server):
    workspace = Workspace(tmp_path, scim_server)
    workspace.write_config(policy="max_disable_percent = 100\ndelete_after_days = 30")
    yield workspace
    workspace.admin.close()


def person(n: int, status: str = "active", title: str = "Agent") -> str:
    return row(f"E{n:04d}", "Given", f"Family{n}", f"p{n}@example.com", title=title, status=status)


def backdate_disables(ws: Workspace, days: int) -> None:
    """The grace period passing: this tool's disables recorded `days` earlier."""
    with ws.db() as db:
        for identity, at in db.execute("select identity, disabled_at from links where disabled_at is not null"):
            earlier = (date.fromisoformat(at[:10]) - timedelta(days=days)).isoformat() + at[10:]
            db.execute("update links set disabled_at = ? where identity = ?", (earlier, identity))


def set_on_server(ws: Workspace, user: dict, path: str, value) -> None:
    answer = ws.admin.patch(f"/Users/{user['id']}", json={
        "schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]})
    assert answer.status_code in (200, 204), answer.text


def test_leavers_are_deleted_after_the_grace_period_and_nobody_else(ws):
    everyone = range(1, 10)   # 1-5 leave; 6 is disabled by hand on the server; 7-9 stay
    ws.people(*(person(n) for n in everyone))
    ws.run("reconcile", "--yes")
    stray = ws.admin.post("/Users", json={"schemas": [USER], "userName": "stray@example.com", "active": False})
    assert stray.status_code == 201
    set_on_server(ws, ws.users()["p6@example.com"], "active", False)
    # the leavers leave (1-3 gone from the export, 4-5 still in it as inactive); 6 leaves, already disabled
    ws.people(*(person(n, status="inactive") for n in (4, 5)), *(person(n) for n in (7, 8, 9)))
    disables = ws.plan()
    assert ops(disables) == [("disable", f"E{n:04d}") for n in range(1, 6)]
    ws.run("apply", disables["plan_id"], "--yes")
    with ws.db() as db:
        recorded = dict(db.execute("select identity, disabled_at from links where disabled_at is not null"))
    assert sorted(recorded) == [f"E{n:04d}" for n in range(1, 6)]
    assert all(at.startswith(TODAY.isoformat()) for at in recorded.values())

    assert ws.plan("--as-of", day(29))["items"] == []
    ahead = ws.plan("--as-of", day(31))
    assert ahead["as_of"] == day(31)
    assert sorted((i["op"], i["identity"]) for i in ahead["items"]) == \
        [("delete", f"E{n:04d}") for n in range(1, 6)]
    assert ahead["targets"]["directory"]["delete"] == 5
    # a plan for a day still ahead is for review: apply refuses it, and it is not `latest`
    refused = ws.run("apply", ahead["plan_id"], "--yes", check=2)
    assert f"made as of {day(31)}, a day still ahead" in refused.stderr
    assert len(ws.users()) == 10
    assert json.loads(ws.run("show", "latest", "--json").stdout)["plan_id"] == disables["plan_id"]
    text = ws.run("plan", "--as-of", day(31)).stdout
    assert text.strip().splitlines()[-1].startswith("Plan: 5 to delete, 0 to create")
    # every view shows the deletes first
    shown = ws.run("show", ahead["plan_id"]).stdout
    assert "x delete" in shown and f"as of {day(31)}" in shown
    csv_lines = ws.run("show", ahead["plan_id"], "--format", "csv").stdout.splitlines()
    assert [line.split(",")[2] for line in csv_lines[1:]] == ["delete"] * 5
    assert "| directory | 10 | 5 |" in ws.run("show", ahead["plan_id"], "--format", "markdown").stdout
    assert 'data-op="delete"' in ws.run("show", ahead["plan_id"], "--format", "html").stdout

    backdate_disables(ws, 31)
    due = ws.plan()
    assert [i["op"] for i in due["items"]] == ["delete"] * 5
    ws.run("apply", due["plan_id"], "--yes")
    left = ws.users()
    assert sorted(left) == ["p6@example.com", "p7@example.com", "p8@example.com", "p9@example.com",
                            "stray@example.com"]
    with ws.db() as db:
        assert sorted(r[0] for r in db.execute("select identity from links")) == \
            ["E0006", "E0007", "E0008", "E0009"]
        deleted = db.execute("select count(*) from audit where op = 'delete'").fetchone()[0]
    assert deleted == 5
    # nothing is due any more, however far ahead
    assert ws.plan("--as-of", day(400))["items"] == []


def test_a_rehire_in_the_grace_period_is_enabled_and_after_the_delete_created(ws):
    ws.people(person(1), person(2))
    ws.run("reconcile", "--yes")
    ws.people(person(2))
    ws.run("reconcile", "--yes")   # E0001 disabled today
    ws.people(person(1), person(2))
    assert ops(ws.plan("--as-of", day(10))) == [("enable", "E0001")]
    enable = ws.plan()
    assert ops(enable) == [("enable", "E0001")]
    ws.run("apply", enable["plan_id"], "--yes")
    with ws.db() as db:
        assert db.execute("select disabled_at from links where identity = 'E0001'").fetchone() == (None,)
    # leaves again, is deleted after the grace period, then comes back: a new account
    ws.people(person(2))
    ws.run("reconcile", "--yes")
    backdate_disables(ws, 30)
    ws.run("reconcile", "--yes")
    assert "p1@example.com" not in ws.users()
    ws.people(person(1), person(2))
    assert ops(ws.plan()) == [("create", "E0001")]


def test_a_delete_already_done_by_someone_counts_as_done(ws):
    ws.people(person(1))
    ws.run("reconcile", "--yes")
    ws.people(person(2))
    ws.run("reconcile", "--yes")
    backdate_disables(ws, 30)
    due = ws.plan()
    assert ops(due)[0] == ("delete", "E0001")
    assert ws.admin.delete(f"/Users/{ws.users()['p1@example.com']['id']}").status_code == 204
    ws.run("apply", due["plan_id"], "--yes")
    shown = json.loads(ws.run("show", due["plan_id"], "--json").stdout)
    assert shown["items"][0]["status"] == "done"
    with ws.db() as db:
        assert db.execute("select count(*) from links where identity = 'E0001'").fetchone() == (0,)


def test_plan_as_of_takes_one_date(ws):
    ws.people(person(1))
    result = ws.run("plan", "--as-of", "31/12/2026", check=2)
    assert "is not a date (YYYY-MM-DD" in result.stderr
    result = ws.run("reconcile", "--as-of", day(3), check=2)
    assert "add --dry-run" in result.stderr
    dry = ws.run("reconcile", "--dry-run", "--as-of", day(3)).stdout
    assert f"as of {day(3)}" in dry and ws.users() == {}


# --- drift --------------------------------------------------------------------------

def with_title_policy(ws: Workspace, policy: str) -> None:
    path = ws.root / "mappings" / "directory.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('title = { from = "title" }',
                                 f'title = {{ from = "title", on_drift = "{policy}" }}'), encoding="utf-8")


@pytest.mark.parametrize("policy", ["revert", "adopt", "alert"])
def test_a_title_changed_on_the_server_follows_on_drift(ws, policy):
    with_title_policy(ws, policy)
    ws.people(person(1), person(2))
    ws.run("reconcile", "--yes")
    set_on_server(ws, ws.users()["p1@example.com"], "title", "Chief of Everything")
    plan = ws.plan()
    if policy == "revert":
        assert ops(plan) == [("update", "E0001")]
        ws.run("apply", plan["plan_id"], "--yes")
        assert ws.users()["p1@example.com"]["title"] == "Agent"
    elif policy == "adopt":
        assert plan["items"] == []
        assert ws.users()["p1@example.com"]["title"] == "Chief of Everything"
    else:
        [item] = plan["items"]
        assert item["op"] == "drift" and item["status"] == "pending"
        assert item["changes"] == {"title": {"from": "Agent", "to": "Chief of Everything"}}
        assert "last modified" in item["reason"]
        assert plan["targets"]["directory"]["drift"] == 1
        text = ws.run("show", plan["plan_id"]).stdout
        assert "title: ours \"Agent\", theirs \"Chief of Everything\"" in text
        assert "0 manual, 1 drift" in text
        assert "Chief of Everything" in ws.run("show", plan["plan_id"], "--format", "markdown").stdout
        ws.run("apply", plan["plan_id"], "--yes")   # nothing to apply: drift is never sent
        assert ws.users()["p1@example.com"]["title"] == "Chief of Everything"


@pytest.mark.parametrize("policy", ["adopt", "alert"])
def test_a_source_change_during_adopt_or_alert_is_written(ws, policy):
    with_title_policy(ws, policy)
    ws.people(person(1))
    ws.run("reconcile", "--yes")
    set_on_server(ws, ws.users()["p1@example.com"], "title", "Chief")
    ws.people(person(1, title="Team Lead"))
    plan = ws.plan()
    assert ops(plan) == [("update", "E0001")]
    ws.run("apply", plan["plan_id"], "--yes")
    assert ws.users()["p1@example.com"]["title"] == "Team Lead"
    with ws.db() as db:
        assert db.execute("select value from written where path = 'title'").fetchone() == ('"Team Lead"',)
    # the new value is the baseline: a later hand change is drift again
    set_on_server(ws, ws.users()["p1@example.com"], "title", "Chief")
    assert [i["op"] for i in ws.plan()["items"]] == ([] if policy == "adopt" else ["drift"])


# --- orphans ------------------------------------------------------------------------

def orphans(ws: Workspace, unmanaged: str, keep: str = 'userName = ["svc-.*"]') -> None:
    ws.write_config(policy=f'unmanaged = "{unmanaged}"\n[policy.keep]\n{keep}')
    ws.people(person(1))
    ws.run("reconcile", "--yes")
    for name in ("svc-backup", "stray@example.com", "other@example.com"):
        made = ws.admin.post("/Users", json={"schemas": [USER], "userName": name, "active": True})
        assert made.status_code == 201


def test_unmanaged_report_lists_the_orphans_in_json_and_text(ws):
    orphans(ws, "report")
    plan = ws.plan()
    assert plan["items"] == []
    listed = {o["person"]: o for o in plan["targets"]["directory"]["orphans"]}
    assert sorted(listed) == ["other@example.com", "stray@example.com", "svc-backup"]
    assert listed["svc-backup"]["kept"] == "userName ~ svc-.*" and listed["stray@example.com"]["kept"] is None
    text = ws.run("plan").stdout
    assert "orphan directory  account" in text and "(stray@example.com)" in text
    stored = ws.plan()["plan_id"]
    markdown = ws.run("show", stored, "--format", "markdown").stdout
    assert "### Accounts that match nobody (orphans)" in markdown and "svc-backup" in markdown
    html = ws.run("show", stored, "--format", "html").stdout
    assert "3 account(s) match nobody" in html and "stray@example.com" in html


def test_unmanaged_disable_disables_orphans_under_the_guard_keeping_the_kept(ws):
    orphans(ws, "disable")
    plan = ws.plan()
    assert sorted(i["person"] for i in plan["items"]) == ["other@example.com", "stray@example.com"]
    assert {i["op"] for i in plan["items"]} == {"disable"} and plan["status"] == "pending"
    ws.run("apply", plan["plan_id"], "--yes")
    users = ws.users()
    assert users["svc-backup"]["active"] is True and users["p1@example.com"]["active"] is True
    assert users["stray@example.com"]["active"] is False and users["other@example.com"]["active"] is False
    # never deleted: this tool disabled them, but they are nobody's
    ws.write_config(policy='unmanaged = "disable"\ndelete_after_days = 0\n[policy.keep]\nuserName = ["svc-.*"]')
    assert ws.plan()["items"] == []
    # the guard counts them like any disable (without the keep pattern, svc-backup is one)
    ws.write_config(policy='unmanaged = "disable"\nmax_disable_count = 0')
    blocked = ws.plan(check=3)
    assert [i["person"] for i in blocked["items"]] == ["svc-backup"]
    assert "1 disables exceed max_disable_count = 0" in blocked["targets"]["directory"]["block_reason"]


def test_a_bad_keep_pattern_is_one_sentence_naming_the_key(ws):
    ws.write_config(policy='unmanaged = "report"\n[policy.keep]\nuserName = ["svc-(.*"]')
    ws.people(person(1))
    result = ws.run("plan", check=2)
    assert "policy.keep: userName: 'svc-(.*' is not a regular expression" in result.stderr
    ws.write_config(policy='unmanaged = "report"\n[policy.keep]\nphone = ["1.*"]')
    result = ws.run("plan", check=2)
    assert "policy.keep.phone: not an attribute of mapping directory.toml" in result.stderr
    result = ws.run("check", "--offline", check=2)
    assert "policy.keep.phone: not an attribute of mapping directory.toml" in result.stderr
