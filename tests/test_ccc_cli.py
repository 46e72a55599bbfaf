"""CCC's configuration keys, and the real CLI as a subprocess against the CCC emulator on 127.0.0.1
with the shipped default mapping (provisioner/connectors/ccc/mapping.toml)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import CCC_CLIENT_ID, CCC_SECRET, CCC_USERNAME
from provisioner.config import load_config
from provisioner.errors import ConfigError
from provisioner.connectors.ccc.emulator import CccOptions
from test_end_to_end import Workspace
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
HEADER = "employee_id,given_name,family_name,email,department,status"
ZONE = "America/New_York"


def config_text(base_url: str, extra: str = "") -> str:
    return f"""
[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.ccc]
type = "ccc"
base_url = "{base_url}"
client_id = {CCC_CLIENT_ID}
username = "{CCC_USERNAME}"
secret_key = "env:E2E_CCC_SECRET"
timezone = "{ZONE}"
mapping = "ccc.toml"
max_disable_percent = 100
{extra}"""


class CccWorkspace(Workspace):
    """Workspace's CLI runner, with a CCC target and the shipped mapping."""

    def __init__(self, root: Path, emulator):
        self.root = root
        (root / "ccc.toml").write_text(default_mapping("ccc").read_text(encoding="utf-8"), encoding="utf-8")
        (root / "config.toml").write_text(config_text(emulator.base_url), encoding="utf-8")
        self.env = {**os.environ, "E2E_CCC_SECRET": CCC_SECRET, "COLUMNS": "200"}
        self.env.pop("PROVISIONER_DB", None)


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("E2E_CCC_SECRET", CCC_SECRET)


def test_config_defaults_and_mistakes(tmp_path, secret_env):
    path = tmp_path / "config.toml"
    path.write_text(config_text("https://api.ccc.uno"), encoding="utf-8")
    target = load_config(path).targets["ccc"]
    assert (target.client_id, target.body_format, target.success_codes) == (CCC_CLIENT_ID, "text", [200, 201])
    assert target.actions.model_dump() == {"list": "Agent/List", "add": "Agent/Add", "update": "Agent/Update",
                                           "disable": "Agent/Disable", "enable": "Agent/Enable", "ping": "Ping"}
    for extra, expected in [
        ('[targets.ccc.actions]\ndelete = "Agent/Delete"\n', "targets.ccc.actions: unknown key 'delete'"),
        ('[targets.ccc.actions]\nlist = "Agent List?x=1"\n',
         "targets.ccc.actions.list: must be a Resource or Resource/Action such as 'Agent/List'"),
        ('body_format = "json"\n', "targets.ccc.body_format: must be 'text' or 'form'"),
        ("success_codes = []\n", "targets.ccc.success_codes: must list at least one ResponseCode"),
    ]:
        path.write_text(config_text("https://api.ccc.uno", extra), encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert str(caught.value).startswith(f"{path}: {expected}"), str(caught.value)
    path.write_text(config_text("https://api.ccc.uno").replace('secret_key = "env:E2E_CCC_SECRET"',
                                                               f'secret_key = "{CCC_SECRET}"'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "targets.ccc.secret_key: secrets are never written in the config" in str(caught.value)
    assert CCC_SECRET not in str(caught.value)


def test_check_reconcile_and_leaver_through_the_cli(tmp_path, ccc_factory):
    emulator = ccc_factory(CccOptions(client_id=CCC_CLIENT_ID, username=CCC_USERNAME, secret_key=CCC_SECRET,
                                      time_zone=ZONE))
    ws = CccWorkspace(tmp_path, emulator)

    def people(*rows):
        (tmp_path / "people.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    people("E1,Ada,Lovelace,Ada@Example.com,Support,active", "E2,Bob,Byte,bob@example.com,Support,active",
           "E3,Cy,Sales,cy@example.com,Sales,active")
    checked = ws.run("check")
    assert "CCC WebServices at" in checked.stdout and "Ping accepted the signed request" in checked.stdout
    ws.run("reconcile", "--yes")
    ada = emulator.by_unique("ada@example.com")
    assert ada == {"AgentID": ada["AgentID"], "Active": 1, "Username": "ada@example.com", "FirstName": "Ada",
                   "LastName": "Lovelace", "Email": "ada@example.com"}
    assert emulator.by_unique("cy@example.com") is None
    # Bob leaves, Ada's name changes: one update, one disable; a second plan is empty
    people("E1,Ada,King,ada@example.com,Support,active", "E2,Bob,Byte,bob@example.com,Support,left")
    ws.run("reconcile", "--yes")
    assert emulator.by_unique("bob@example.com")["Active"] == 0
    assert emulator.by_unique("ada@example.com")["LastName"] == "King"
    assert ws.plan()["items"] == []
    assert {p for _, p, _ in emulator.requests} == {"/ws/Ping", "/ws/Agent/List", "/ws/Agent/Add",
                                                    "/ws/Agent/Update", "/ws/Agent/Disable"}
    assert 401 not in emulator.statuses()
    assert [s for m, p, s in emulator.requests if p != "/ws/Agent/List"] == [200, 200, 200, 200, 200]
    assert CCC_SECRET not in checked.stdout + checked.stderr and CCC_SECRET not in (tmp_path / "state.db").read_bytes().decode("latin-1")


def test_sandbox_section_starts_the_emulator_the_target_config_reaches(tmp_path, secret_env):
    from provisioner.sandbox.serve import start_emulators
    from provisioner.target_handle import open_target
    from provisioner.mapping import load_mapping
    from ports import free_port

    port = free_port()
    (tmp_path / "ccc.toml").write_text(default_mapping("ccc").read_text(encoding="utf-8"), encoding="utf-8")
    sandbox = f"""
[sandbox.ccc]
port = {port}
client_id = {CCC_CLIENT_ID}
username = "{CCC_USERNAME}"
secret_key = "env:E2E_CCC_SECRET"
timezone = "{ZONE}"
window = 30
body_format_ignored = 1
"""
    path = tmp_path / "config.toml"
    path.write_text(config_text(f"http://127.0.0.1:{port}") + sandbox, encoding="utf-8")
    with pytest.raises(ConfigError, match="sandbox.ccc: unknown key 'body_format_ignored'"):
        load_config(path)
    sandbox = sandbox.replace("body_format_ignored = 1\n", 'state_file = "ccc.json"\n'
                              '[sandbox.ccc.actions]\nlist = "Agent/Search"\n')
    path.write_text(config_text(f"http://127.0.0.1:{port}", 'body_format = "form"\n[targets.ccc.actions]\n'
                                'list = "Agent/Search"\n') + sandbox, encoding="utf-8")
    settings = load_config(path)
    for round in (1, 2):
        [(name, emulator)] = start_emulators(settings.sandbox, str(path))
        try:
            mapping = load_mapping(tmp_path / "ccc.toml")
            with open_target("ccc", settings.targets["ccc"], mapping).target as target:
                assert "Ping accepted" in target.check()
                if round == 1:
                    target.create({"Username": "kept@example.com", "active": True})
                else:   # the state file kept the agent
                    assert [a.attrs["Username"] for a in target.list_accounts()] == ["kept@example.com"]
            assert emulator.options.window == 30 and emulator.statuses("/ws/Agent/Search") == [200] * (round - 1)
        finally:
            emulator.stop()


def test_without_a_timezone_request_date_time_is_the_hosts_local_time(tmp_path, ccc_factory):
    # seed 000: RequestDateTime is "in the Client's current time-zone". The CLI runs in a zone far
    # from UTC (TZ of its process) and the config names none: the emulator, reading the time in
    # that zone, accepts the signature only if the target wrote local time.
    local = "Asia/Kolkata"     # UTC+05:30, far outside the server's 300 s window
    emulator = ccc_factory(CccOptions(client_id=CCC_CLIENT_ID, username=CCC_USERNAME, secret_key=CCC_SECRET,
                                      time_zone=local))
    ws = CccWorkspace(tmp_path, emulator)
    ws.env["TZ"] = local
    (tmp_path / "config.toml").write_text(config_text(emulator.base_url).replace(f'timezone = "{ZONE}"\n', ""),
                                          encoding="utf-8")
    (tmp_path / "people.csv").write_text(HEADER + "\nE1,Ada,Lovelace,ada@example.com,Support,active\n",
                                         encoding="utf-8")
    checked = ws.run("check")
    assert "Ping accepted the signed request" in checked.stdout
    ws.run("reconcile", "--yes")
    assert emulator.by_unique("ada@example.com")["Active"] == 1
    assert 401 not in emulator.statuses()
