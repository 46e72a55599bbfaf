"""The real CLI, as a subprocess, with a ClientTrack target served by the CTAPI emulator
on 127.0.0.1, using the shipped default mapping (provisioner/connectors/clienttrack/mapping.toml)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import CLIENTTRACK_API_KEY, CLIENTTRACK_SUBSCRIPTION
from test_end_to_end import Workspace
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
HEADER = "employee_id,given_name,family_name,email,department,title,work_phone,status"


class ClientTrackWorkspace(Workspace):
    def __init__(self, root: Path, emulator):
        self.root, self.emulator = root, emulator
        (root / "clienttrack.toml").write_text(default_mapping("clienttrack").read_text(
            encoding="utf-8"), encoding="utf-8")
        self.write_config()
        self.env = {**os.environ, "E2E_CT_SUB": CLIENTTRACK_SUBSCRIPTION, "E2E_CT_KEY": CLIENTTRACK_API_KEY,
                    "COLUMNS": "200"}
        self.env.pop("PROVISIONER_DB", None)

    def write_config(self, extra: str = "") -> None:
        (self.root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.clienttrack]
type = "clienttrack"
base_url = "{self.emulator.base_url}"
subscription_key = "env:E2E_CT_SUB"
api_key = "env:E2E_CT_KEY"
mapping = "clienttrack.toml"
page_size = 2
max_disable_percent = 100
{extra}""", encoding="utf-8")

    def people(self, *rows: str) -> None:
        (self.root / "people.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    def run(self, *args: str, check: int | None = 0):
        proc = super().run(*args, check=check)
        assert CLIENTTRACK_SUBSCRIPTION not in proc.stdout + proc.stderr
        assert CLIENTTRACK_API_KEY not in proc.stdout + proc.stderr
        return proc

    def rows(self) -> dict[str, dict]:
        with self.emulator.lock:
            return {r["UserName"]: dict(r) for r in self.emulator.rows.values()}


def row(key, given, email, title="Agent", status="active", dept="Support"):
    return ",".join([key, given, "Tester", email, dept, title, "555-0100", status])


def test_sync_leaver_and_query_limit(tmp_path, clienttrack):
    clienttrack.insert({"UserName": "ann@example.com", "FirstName": "Ann", "LastName": "Tester",
                        "Email": "ann@example.com", "Title": "Trainee", "Phone": "555-0100",
                        "ActiveStatus": "Active"})
    for n in range(3):   # accounts of nobody in the source: counted as unmanaged, left alone
        clienttrack.insert({"UserName": f"other{n}", "ActiveStatus": "Active"})
    ws = ClientTrackWorkspace(tmp_path, clienttrack)
    ws.people(row("E1", "Ann", "Ann@Example.com"), row("E2", "Bob", "bob@example.com"),
              row("E3", "Cy", "cy@example.com", dept="Sales"))

    # `check` through the CLI is tested with `sandbox serve` (test_sandbox_clienttrack.py)
    ws.run("reconcile", "--yes")
    rows = ws.rows()
    assert rows["ann@example.com"]["Title"] == "Agent"          # correlated on UserName, updated
    assert rows["bob@example.com"]["ActiveStatus"] == "Active"  # created
    assert "cy@example.com" not in rows and len(rows) == 5       # out of scope; others left alone
    assert ws.plan()["items"] == []

    ws.people(row("E1", "Ann", "ann@example.com"), row("E2", "Bob", "bob@example.com", status="left"),
              row("E3", "Cy", "cy@example.com", dept="Sales"))     # Bob leaves: disabled, never deleted
    ws.run("reconcile", "--yes")
    assert ws.rows()["bob@example.com"]["ActiveStatus"] == "Inactive"
    assert not [m for m, _, _ in clienttrack.requests if m == "DELETE"]

    ws.write_config('columns = { Title = "' + "T" * 2100 + '" }\n')
    refused = ws.run("plan", check=2)
    assert "targets.clienttrack: the CRQL list query would be" in refused.stderr
    assert "over CTAPI's 2048" in refused.stderr


@pytest.mark.parametrize("quirk,said", [("top_first", "page 2 was empty although UserID 1001 is not the only row"),
                                        ("repeat", "page 2 repeated page 1")])
def test_check_reads_two_pages_and_names_keyset_paging(tmp_path, clienttrack_factory, quirk, said):
    # a server whose TOP binds before pageNo (or that ignores pageNo): `check` must fail and say
    # what to set, not pass and leave it to `plan` to block later
    emulator = clienttrack_factory(paging_quirk=quirk)
    for name in ("ann", "bob"):   # two rows fit one page of 2: only one-row pages show the quirk
        emulator.insert({"UserName": f"{name}@example.com", "ActiveStatus": "Active"})
    ws = ClientTrackWorkspace(tmp_path, emulator)
    ws.people(row("E1", "Ann", "ann@example.com"))
    checked = ws.run("check", check=1)
    assert f"target clienttrack: FAILED: clienttrack: check: {said}" in checked.stderr
    assert 'set paging = "keyset" for this target' in checked.stderr
    ws.write_config('paging = "keyset"\n')
    assert "(keyset paging)" in ws.run("check").stdout


def test_check_passes_top_paging_that_pages(tmp_path, clienttrack):
    for name in ("ann", "bob"):
        clienttrack.insert({"UserName": f"{name}@example.com", "ActiveStatus": "Active"})
    ws = ClientTrackWorkspace(tmp_path, clienttrack)
    ws.people(row("E1", "Ann", "ann@example.com"))
    assert "(top paging, pageNo checked)" in ws.run("check").stdout
