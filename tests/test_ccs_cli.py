"""The real CLI, as a subprocess, with OneCloud and CCS emulators on 127.0.0.1 and
the shipped default mappings: CCS takes the extension OneCloud assigned
(links.onecloud.extension), finds extensions by number or by name, and asks
for the extensions it cannot create."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from test_onecloud_cli import OneCloudWorkspace
from provisioner.connectors.ccs.emulator import CcsEmulator, CcsOptions
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
CCS_TOKEN = "test-ccs-cli-token-77aa"
TENANT = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"


def row(key, given, family, status="active"):
    return ",".join([key, given, family, f"{key.lower()}@example.com", "Support", "Agent", "UTC", "", "",
                     "Agent", "", status])


class TwoTargets(OneCloudWorkspace):
    """OneCloudWorkspace's OneCloud target and CLI runner, plus a CCS target."""

    def __init__(self, root: Path, onecloud, ccs):
        super().__init__(root, onecloud, with_team=False)
        (root / "ccs.toml").write_text(default_mapping("ccs").read_text(encoding="utf-8"),
                                       encoding="utf-8")
        with (root / "config.toml").open("a", encoding="utf-8") as config:
            config.write(f"""
[targets.ccs]
type = "ccs"
base_url = "{ccs.base_url}"
token = "env:E2E_CCS_TOKEN"
tenant_uuid = "{TENANT}"
signout_presence = "Sign Out"
mapping = "ccs.toml"
max_disable_percent = 100
""")
        self.env["E2E_CCS_TOKEN"] = CCS_TOKEN

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
        ws.people(row("E1", "Ada", "Lovelace"), row("E2", "José", "Núñez"), row("E3", "Grace", "Hopper"))
        plan = ws.plan()
        items = ccs_items(plan)
        # nothing to go on for Ada yet: a manual item; José is found by name (accents, case)
        assert items["E1"]["op"] == "manual" and "create extension for Ada Lovelace in CCS" in items["E1"]["reason"]
        assert items["E2"]["op"] == "enable" and items["E2"]["account_id"] == "jose"
        ws.run("apply", plan["plan_id"], "--yes")
        assert ccs.extensions["jose"]["is_agent"] == "true" and ccs.extensions["jose"]["max_chats"] == "3"

        # OneCloud assigned extensions, kept with its links. Someone makes Ada's in CCS
        # (under another name): it is found by number. Grace's is asked for by number.
        extensions = ws.onecloud_extensions()
        ccs.add_extension("A.", "Lovelace-King", extensions["E1"], uuid="ada")
        # José leaves: his OneCloud user is disabled, his extension stops being an agent and is signed out
        ccs.extensions["jose"]["agent_state"] = "Ready"
        ws.people(row("E1", "Ada", "Lovelace"), row("E2", "José", "Núñez", status="terminated"),
                  row("E3", "Grace", "Hopper"))
        plan = ws.plan()
        assert sorted((i["target"], i["op"], i["identity"], i["account_id"] or "-") for i in plan["items"]
                      if i["target"] == "ccs") == [
            ("ccs", "disable", "E2", "jose"), ("ccs", "enable", "E1", "ada"), ("ccs", "manual", "E3", "-")]
        assert [(i["op"], i["identity"]) for i in plan["items"] if i["target"] == "onecloud"] == [("disable", "E2")]
        assert f"create extension {extensions['E3']} for Grace Hopper" in ccs_items(plan)["E3"]["reason"]
        ws.run("apply", plan["plan_id"], "--yes")
        assert (ccs.extensions["jose"]["is_agent"], ccs.extensions["jose"]["agent_state"]) == ("false", "Sign Out")
        assert ccs.extensions["ada"]["is_agent"] == "true"
        assert [i["op"] for i in ws.plan()["items"]] == ["manual"]
    finally:
        ccs.stop()


def list_reads(ccs) -> int:
    return len([r for r in ccs.requests if r[0] == "GET" and r[1].endswith("/extensions")])


def ccs_writes(ccs, uuid: str) -> int:
    return len([r for r in ccs.requests if r[0] == "PUT" and r[1].endswith(f"/extensions/{uuid}/")])


def test_write_only_agent_settings_converge_and_leavers_are_disabled(tmp_path, onecloud):
    # the list answers as the vendor's example does: uuid, names and number, no settings
    ccs = CcsEmulator(CcsOptions(token=CCS_TOKEN, extensions=[
        dict(uuid="ada", firstname="Ada", lastname="Lovelace", extension="301"),
        dict(uuid="jose", firstname="Jose", lastname="Nunez", extension="302"),
        dict(uuid="grace", firstname="Grace", lastname="Hopper", extension="303")])).start()
    try:
        ws = TwoTargets(tmp_path, onecloud, ccs)
        people = [row("E1", "Ada", "Lovelace"), row("E2", "José", "Núñez"), row("E3", "Grace", "Hopper")]
        ws.people(*people)
        plan = ws.plan()
        assert sorted((i["op"], i["account_id"]) for i in ccs_items(plan).values()) == [
            ("enable", "ada"), ("enable", "grace"), ("enable", "jose")]
        before = list_reads(ccs)
        ws.run("apply", plan["plan_id"], "--yes")
        assert list_reads(ccs) - before == 1      # one list read for the whole apply, not one per item
        for uuid in ("ada", "jose", "grace"):
            held = ccs.extensions[uuid]
            assert (held["is_agent"], held["recording_type"], held["monitor"], held["max_chats"],
                    held["is_multimedia_enabled"]) == ("true", "On Demand", "true", "3", "true")
            assert ccs_writes(ccs, uuid) == 1

        # the list still shows no settings: planned against what was written, nothing to do
        assert ccs_items(ws.plan()) == {}

        # José leaves (his extension was made an agent by us): disabled; a new extension made
        # by hand for a new person is written once
        ccs.add_extension("Katherine", "Johnson", "304", uuid="kate")
        ws.people(*people[:1], row("E2", "José", "Núñez", status="terminated"), *people[2:],
                  row("E4", "Katherine", "Johnson"))
        plan = ws.plan()
        assert sorted((i["op"], i["account_id"]) for i in ccs_items(plan).values()) == [
            ("disable", "jose"), ("enable", "kate")]
        ws.run("apply", plan["plan_id"], "--yes")
        assert ccs.extensions["jose"]["is_agent"] == "false"
        assert ccs.extensions["kate"]["is_agent"] == "true" and ccs_writes(ccs, "kate") == 1
        assert ccs_items(ws.plan()) == {}
        assert ccs_writes(ccs, "ada") == 1 and ccs_writes(ccs, "jose") == 2
        # `person` shows the settings CCS cannot show as what was last written
        shown = json.loads(ws.run("person", "E2", "--json").stdout)["targets"]["ccs"]["account"]
        assert shown["active"] is False and shown["attrs"]["max_chats"] == "3"
    finally:
        ccs.stop()
