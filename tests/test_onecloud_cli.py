"""The real CLI, as a subprocess, with a OneCloud target served by the emulator on 127.0.0.1,
using the shipped default mapping (provisioner/connectors/onecloud/mapping.toml)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path


from conftest import ONECLOUD_SECRET, ONECLOUD_TENANT
from test_end_to_end import Workspace
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
# the shipped mapping reads every one of these columns (a missing one is a configuration error)
HEADER = "employee_id,given_name,family_name,email,department,title,timezone,work_phone,mobile_phone,role,team,status"


def row(key, given, email, title="Agent", role="", team="Customer Service", status="active", phone=""):
    role = f'"{role}"' if "," in role else role
    return ",".join([key, given, "Tester", email, "Support", title, "Europe/London", phone, "", role, team, status])


class OneCloudWorkspace(Workspace):
    """Workspace's CLI runner, with a OneCloud target instead of a SCIM one."""

    def __init__(self, root: Path, emulator, with_team: bool):
        self.root, self.emulator = root, emulator
        mapping = default_mapping("onecloud").read_text(encoding="utf-8")
        if with_team:
            mapping += '\nteam = { from = "team" }\n'   # appended to [attributes], the last table
        (root / "onecloud.toml").write_text(mapping, encoding="utf-8")
        (root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.onecloud]
type = "onecloud"
base_url = "{emulator.base_url}"
tenant = "{ONECLOUD_TENANT}"
client_id = "admin"
client_secret = "env:E2E_ONECLOUD_SECRET"
mapping = "onecloud.toml"
max_disable_percent = 100
""", encoding="utf-8")
        self.env = {**os.environ, "E2E_ONECLOUD_SECRET": ONECLOUD_SECRET, "COLUMNS": "200"}
        self.env.pop("PROVISIONER_DB", None)

    def people(self, *rows: str) -> None:
        (self.root / "people.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    def run(self, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        proc = super().run(*args, check=check)
        assert ONECLOUD_SECRET not in proc.stdout + proc.stderr
        return proc

    def users(self) -> dict[str, dict]:
        with self.emulator.lock:
            return {u["loginId"]: dict(u) for u in self.emulator.users.values()}


def ops(plan):
    return sorted((i["op"], i["identity"]) for i in plan["items"])


def test_sync_with_the_default_mapping_rename_and_leaver(tmp_path, onecloud):
    ws = OneCloudWorkspace(tmp_path, onecloud, with_team=False)
    ws.people(row("E1", "Ada", "Ada@Example.com", role="Agent, Supervisor", phone="555-0101"),
              row("E2", "Bob", "bob@example.com"))
    plan = ws.plan()
    assert ops(plan) == [("create", "E1"), ("create", "E2")]
    ws.run("apply", plan["plan_id"], "--yes")
    users = ws.users()
    assert users["ada@example.com"]["roles"] == ["Agent", "Supervisor"]
    assert users["ada@example.com"]["workPhone"] == "555-0101" and users["bob@example.com"]["roles"] == ["Agent"]
    assert ws.plan()["items"] == []

    # the extension OneCloud assigned is kept with the link
    with sqlite3.connect(tmp_path / "state.db") as db:
        data = {k: json.loads(d) for k, d in db.execute("select identity, data from links")}
    assert data["E1"]["extension"] == users["ada@example.com"]["extension"]

    # Ada's login changes, Bob leaves: one rename in place, one disable, nothing deleted
    ada_id = users["ada@example.com"]["id"]
    ws.people(row("E1", "Ada", "ada.king@example.com", role="Agent, Supervisor", phone="555-0101"))
    plan = ws.plan()
    assert ops(plan) == [("disable", "E2"), ("update", "E1")]
    ws.run("apply", plan["plan_id"], "--yes")
    users = ws.users()
    assert users["ada.king@example.com"]["id"] == ada_id and users["bob@example.com"]["disabled"] is True
    assert ws.plan()["items"] == []


def test_unknown_team_is_a_conflict_and_unknown_role_fails_one_item(tmp_path, onecloud):
    ws = OneCloudWorkspace(tmp_path, onecloud, with_team=True)
    ws.people(row("E1", "Ada", "ada@example.com", team="Night Shift"),
              row("E2", "Bob", "bob@example.com", role="Wizard"),
              row("E3", "Cy", "cy@example.com", team="Management"))
    plan = ws.plan()
    by_key = {i["identity"]: i for i in plan["items"]}
    assert by_key["E1"]["op"] == "conflict"
    assert "team 'Night Shift' does not exist in OneCloud" in by_key["E1"]["reason"]
    applied = ws.run("apply", plan["plan_id"], "--yes", check=1)
    shown = {i["identity"]: i for i in json.loads(ws.run("show", plan["plan_id"], "--json").stdout)["items"]}
    assert shown["E2"]["status"] == "failed"
    assert "Role not found" in shown["E2"]["error"] and "create the role there" in shown["E2"]["error"]
    assert shown["E3"]["status"] == "done" and ws.users()["cy@example.com"]["team"] == "Management"
    assert "bob@example.com" not in ws.users() and "ada@example.com" not in ws.users()
    assert "failed" in applied.stdout


def test_team_converges_when_scim_users_carry_no_groups(tmp_path, onecloud):
    # the emulator answers SCIM users without `groups`, as most of the vendor's examples do:
    # the team is read from the user API (GET /configapi/v2/user/{loginId})
    ws = OneCloudWorkspace(tmp_path, onecloud, with_team=True)
    ws.people(row("E1", "Ada", "ada@example.com", team="Management"), row("E2", "Bob", "bob@example.com"))
    plan = ws.plan()
    assert ops(plan) == [("create", "E1"), ("create", "E2")]
    ws.run("apply", plan["plan_id"], "--yes")
    assert ws.users()["ada@example.com"]["team"] == "Management"
    assert ws.plan()["items"] == []

    ws.people(row("E1", "Ada", "ada@example.com", team="Customer Service"), row("E2", "Bob", "bob@example.com"))
    plan = ws.plan()
    assert [(i["op"], i["identity"], i["changes"]) for i in plan["items"]] == [
        ("update", "E1", {"team": {"from": "Management", "to": "Customer Service"}})]
    ws.run("apply", plan["plan_id"], "--yes")
    assert ws.plan()["items"] == []
