"""The real CLI, as a subprocess, with OneCloud and CCS emulators on 127.0.0.1 and
the shipped default mappings: CCS takes the extension OneCloud assigned
(links.onecloud.extension), finds extensions by number or by name, and asks
for the extensions it cannot create."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from conftest import ONECLOUD_SECRET, ONECLOUD_TENANT
from test_end_to_end import Workspace
from provisioner.sandbox.ccs import CcsEmulator, CcsOptions

REPO = Path(__file__).resolve().parent.parent
CCS_TOKEN = "test-ccs-cli-token-77aa"
TENANT = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"
HEADER = "employee_id,given_name,family_name,email,department,title,timezone,work_phone,role,team,status"


def row(key, given, family, status="active"):
    return ",".join([key, given, family, f"{key.lower()}@example.com", "Support", "Agent", "UTC", "",
                     "Agent", "", status])


class TwoTargets(Workspace):
    def __init__(self, root: Path, onecloud, ccs):
        self.root = root
        for name in ("onecloud", "ccs"):
            (root / f"{name}.toml").write_text((REPO / "mappings" / f"{name}.toml").read_text(encoding="utf-8"),
                                               encoding="utf-8")
        (root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.onecloud]
type = "onecloud"
base_url = "{onecloud.base_url}"
tenant = "{ONECLOUD_TENANT}"
client_id = "admin"
client_secret = "env:E2E_ONECLOUD_SECRET"
mapping = "onecloud.toml"
max_disable_percent = 100

[targets.ccs]
type = "ccs"
base_url = "{ccs.base_url}"
token = "env:E2E_CCS_TOKEN"
tenant_uuid = "{TENANT}"
signout_presence = "Sign Out"
mapping = "ccs.toml"
max_disable_percent = 100
""", encoding="utf-8")
        self.env = {**os.environ, "E2E_ONECLOUD_SECRET": ONECLOUD_SECRET, "E2E_CCS_TOKEN": CCS_TOKEN,
                    "COLUMNS": "200"}
        self.env.pop("PROVISIONER_DB", None)

    def people(self, *rows: str) -> None:
        (self.root / "people.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    def run(self, *args: str, check: int | None = 0):
        proc = super().run(*args, check=check)
        assert CCS_TOKEN not in proc.stdout + proc.stderr
        return proc

    def onecloud_extensions(self) -> dict[str, str]:
        with sqlite3.connect(self.root / "state.db") as db:
            return {k: json.loads(d)["extension"]
                    for k, d in db.execute("select identity, data from links where target = 'onecloud'")}


def ccs_items(plan):
    return {i["identity"]: i for i in plan["items"] if i["target"] == "ccs"}


def test_ccs_follows_onecloud_extensions_and_people(tmp_path, onecloud):
    ccs = CcsEmulator(CcsOptions(token=CCS_TOKEN, extensions=[
        dict(uuid="jose", firstname="JOSE", lastname="Nunez", extension="113")])).start()
    try:
        ws = TwoTargets(tmp_path, onecloud, ccs)
        ws.people(row("E1", "Ada", "Lovelace"), row("E2", "José", "Núñez"))
        plan = ws.plan()
        items = ccs_items(plan)
        # nothing to go on for Ada yet: a manual item; José is found by name (accents, case)
        assert items["E1"]["op"] == "manual" and "create extension for Ada Lovelace in CCS" in items["E1"]["reason"]
        assert items["E2"]["op"] == "enable" and items["E2"]["account_id"] == "jose"
        ws.run("apply", plan["plan_id"], "--yes")
        assert ccs.extensions["jose"]["is_agent"] == "true" and ccs.extensions["jose"]["max_chats"] == "3"

        # OneCloud assigned Ada an extension: CCS now asks for exactly that one...
        ada = ws.onecloud_extensions()["E1"]
        plan = ws.plan()
        assert [(i["op"], i["identity"]) for i in plan["items"]] == [("manual", "E1")]
        assert f"create extension {ada} for Ada Lovelace" in plan["items"][0]["reason"]
        # ...and once someone makes it (under another name), finds it by number
        ccs.add_extension("A.", "Lovelace-King", ada, uuid="ada")
        plan = ws.plan()
        assert [(i["op"], i["identity"], i["account_id"]) for i in plan["items"]] == [("enable", "E1", "ada")]
        ws.run("apply", plan["plan_id"], "--yes")

        # José leaves: his OneCloud user is disabled, his extension stops being an agent and is signed out
        ccs.extensions["jose"]["agent_state"] = "Ready"
        ws.people(row("E1", "Ada", "Lovelace"), row("E2", "José", "Núñez", status="terminated"))
        plan = ws.plan()
        assert sorted((i["target"], i["op"], i["identity"]) for i in plan["items"]) == [
            ("ccs", "disable", "E2"), ("onecloud", "disable", "E2")]
        ws.run("apply", plan["plan_id"], "--yes")
        assert ccs.extensions["jose"]["is_agent"] == "false"
        assert ccs.extensions["jose"]["agent_state"] == "Sign Out"
        assert ws.plan()["items"] == []
    finally:
        ccs.stop()
