"""HR + a real directory merged: a source that comes back empty or shrunk blocks on its own,
and a record rejected in one source holds that person on every target.

The directory entries live in an OU of their own per test (added to the
session's slapd as its root), so the 5,000 people of ou=people stay as they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from ldap3 import MODIFY_REPLACE, Connection, Server

from conftest import SCIM_TOKEN
from provisioner.model import Identity, SourceResult
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from provisioner.sandbox.slapd import READER_DN, READER_PASSWORD, ROOT_DN, ROOT_PASSWORD, SUFFIX

REPO = Path(__file__).resolve().parent.parent

MAPPING = """
correlate = ["userName"]
[attributes]
userName = "email"
"emails[0].value" = "email"
"name.givenName" = "givenName"
title = "title"
active = { from = "active", equals = "true", default = true }
"""

HR_CSV = ("Personnel No,givenName,email,hire_date\n"
          "E1,Hr-Ann,ann@hr.example,2020-01-01\n"
          "E2,Hr-Bob,bob@hr.example,2020-01-01\n"
          "E3,Hr-Cid,cid@hr.example,2020-01-01\n")


class Workspace:
    def __init__(self, root: Path, slapd, scim_server):
        self.root, self.slapd, self.scim = root, slapd, scim_server
        self.admin = httpx.Client(base_url=scim_server.base_url,
                                  headers={"Authorization": f"Bearer {SCIM_TOKEN}"})
        self.ldap = Connection(Server("127.0.0.1", port=slapd.port), ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        (root / "dir.toml").write_text(MAPPING)
        (root / "hr.csv").write_text(HR_CSV)

    def ou(self, name: str, people: dict[str, str]) -> str:
        """A fresh OU holding one inetOrgPerson per employee number -> mail; its DN."""
        dn = f"ou={self.root.name}-{name},{SUFFIX}"
        assert self.ldap.add(dn, ["organizationalUnit"]), self.ldap.result
        for n, (number, mail) in enumerate(people.items(), 1):
            assert self.ldap.add(f"uid=u{n},{dn}", ["inetOrgPerson"], {
                "uid": f"u{n}", "cn": f"U {n}", "sn": f"U{n}", "givenName": f"Dir-{number}",
                "employeeNumber": number, "mail": mail, "title": "Engineer"}), self.ldap.result
        return dn

    def configure(self, base_dn: str, search_filter: str = "(objectClass=inetOrgPerson)") -> None:
        (self.root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"

[[sources]]
name = "hr"
type = "hr"
path = "hr.csv"
key = "employee_id"
columns = {{ "Personnel No" = "employee_id" }}

[[sources]]
name = "ldap"
type = "ldap"
url = "{self.slapd.url}"
ca_file = "{self.slapd.ca_file}"
bind_dn = "{READER_DN}"
password = "env:T_GUARD_LDAP_PASSWORD"
base_dn = "{base_dn}"
filter = "{search_filter}"
preset = "openldap"
attributes = {{ mail = "email" }}

[merge]
join = {{ hr = "employee_id", ldap = "employeeNumber" }}
email = ["ldap", "hr"]
givenName = ["ldap", "hr"]
active = ["hr"]

[targets.dir]
type = "scim"
base_url = "{self.scim.base_url}"
token = "env:T_GUARD_SCIM_TOKEN"
mapping = "dir.toml"
""")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "T_GUARD_SCIM_TOKEN": SCIM_TOKEN, "T_GUARD_LDAP_PASSWORD": READER_PASSWORD,
               "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        env.pop("PROVISIONER_DB", None)
        proc = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def plan(self, expect: int) -> dict:
        proc = self.cli("plan", "--json")
        assert proc.returncode == expect, proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    def users(self) -> dict[str, dict]:
        body = self.admin.get("/Users", params={"count": 1000}).json()
        return {u["id"]: {k: v for k, v in u.items() if k != "meta"} for u in body.get("Resources", [])}

    def close(self) -> None:
        self.admin.close()
        self.ldap.unbind()


@pytest.fixture
def ws(tmp_path, slapd, scim_server):
    workspace = Workspace(tmp_path, slapd, scim_server)
    yield workspace
    workspace.close()


def test_an_empty_or_shrunk_directory_beside_a_full_hr_export_blocks(ws):
    full = ws.ou("full", {"E1": "ann@corp.example", "E2": "bob@corp.example", "E3": "cid@corp.example"})
    empty = ws.ou("empty", {})

    # no baseline yet: an empty source beside a non-empty one is never normal
    ws.configure(empty)
    plan = ws.plan(expect=3)
    reason = plan["targets"]["dir"]["block_reason"]
    assert plan["status"] == "blocked"
    assert "source ldap returned no records" in reason and "hr" in reason and "3 identities" in reason
    assert ws.users() == {}

    ws.configure(full)
    done = ws.cli("reconcile", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    before = ws.users()
    assert sorted(u["userName"] for u in before.values()) == [
        "ann@corp.example", "bob@corp.example", "cid@corp.example"]

    # the merged count is still 3 (HR decides who exists), yet every account would be
    # rewritten to HR's fallbacks: the directory's own count blocks it
    ws.configure(empty)
    plan = ws.plan(expect=3)
    assert plan["source"]["identities"] == 3
    reason = plan["targets"]["dir"]["block_reason"]
    assert reason.startswith("source ldap yielded 0 identities (0 rejected), fewer than 50% of the 3 "
                             "of the last successful run"), reason
    applied = ws.cli("reconcile", "--yes")
    assert applied.returncode != 0, applied.stdout + applied.stderr
    assert "source ldap yielded 0 identities" in applied.stdout
    assert ws.users() == before

    ws.configure(full, "(employeeNumber=E1)")   # 1 of 3: shrunk, not empty
    plan = ws.plan(expect=3)
    assert "source ldap yielded 1 identities (0 rejected), fewer than 50% of the 3" in \
        plan["targets"]["dir"]["block_reason"]
    assert ws.cli("reconcile", "--yes").returncode != 0
    assert ws.users() == before


def test_a_directory_entry_with_a_broken_mail_holds_that_person_everywhere(ws):
    dn = ws.ou("staff", {"E1": "ann@corp.example", "E2": "bob@corp.example", "E3": "cid@corp.example"})
    ws.configure(dn)
    done = ws.cli("reconcile", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    before = ws.users()

    assert ws.ldap.modify(f"uid=u2,{dn}", {"mail": [(MODIFY_REPLACE, ["bob-at-corp"])]}), ws.ldap.result
    assert ws.ldap.modify(f"uid=u3,{dn}", {"title": [(MODIFY_REPLACE, ["Lead"])]}), ws.ldap.result
    plan = ws.plan(expect=0)
    # Bob is neither renamed to his HR address nor disabled; Cid's change still goes ahead
    assert [(i["op"], i["identity"]) for i in plan["items"]] == [("update", "E3")]
    rejected = plan["source"]["rejected"]
    assert [(r["key"], r.get("source")) for r in rejected] == [("E2", "ldap")]
    assert f"uid=u2,{dn}: invalid email 'bob-at-corp'" in rejected[0]["reason"]
    summary = plan["targets"]["dir"]
    assert (summary.get("held"), summary["unmanaged"]) == (1, 0)

    done = ws.cli("reconcile", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    after = ws.users()
    bob = next(i for i, u in before.items() if u["userName"] == "bob@corp.example")
    assert after[bob] == before[bob]
    assert "held" in ws.cli("show", "latest").stdout


# --- the planner on its own ----------------------------------------------------------

class _Mapping:
    correlate = ("userName",)
    drift_tracked = frozenset()

    def in_scope(self, attrs):
        return True

    def render(self, attrs):
        return {"userName": attrs.get("email")}

    def case_insensitive(self, path):
        return True


def _source(hr: int, ldap: int) -> SourceResult:
    people = tuple(Identity(f"E{n}", {"email": f"e{n}@x.example"}) for n in range(1, hr + 1))
    return SourceResult(people, counts={"hr": {"identities": hr, "rejected": 0},
                                        "ldap": {"identities": ldap, "rejected": 0}})


def test_each_source_is_held_to_its_own_baseline():
    def reason(source, baseline, per_source):
        target = TargetInput(name="dir", mapping=_Mapping(), accounts=[], links={})
        plan = make_plan(source, [target], PlanPolicy(), plan_id="p", created_at="t",
                         baseline_identities=baseline, baseline_sources=per_source)
        return plan.targets["dir"].block_reason

    assert reason(_source(10, 10), 10, {"hr": 10, "ldap": 10}) is None
    assert reason(_source(10, 4), 10, {"hr": 10, "ldap": 10}) == (
        "source ldap yielded 4 identities (0 rejected), fewer than 50% of the 10 of the last successful run")
    # a source the last run did not have has no baseline of its own
    assert reason(_source(10, 4), 10, {"hr": 10}) is None
    assert reason(_source(10, 0), None, None).startswith("source ldap returned no records")
