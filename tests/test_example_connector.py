"""The plug-in path: tests/example_connector, a distribution of its own, adds the target type
"example_directory" by one entry point, without a line in provisioner/ naming it. It passes the
conformance suite (tests/test_conformance.py) and is a connector like the built-in ones for the
CLI. .ci/run installs it: python3 -m pip install -e tests/example_connector"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TYPE = "example_directory"

if not any(p.name == TYPE for p in entry_points(group="provisioner.connectors")):
    pytest.skip("SKIPPING the example connector: not installed "
                "(python3 -m pip install -e tests/example_connector; .ci/run does)", allow_module_level=True)


def test_it_is_registered_by_its_entry_point_and_named_nowhere_in_provisioner():
    from provisioner.connectors import connector, origin
    assert connector(TYPE).type == TYPE
    assert origin(TYPE) == "provisioner-example-connector"
    named = [p for p in (REPO / "provisioner").rglob("*") if p.is_file() and p.suffix in (".py", ".toml", ".md")
             and (TYPE in p.read_text(encoding="utf-8") or "provisioner_example_connector" in p.read_text(encoding="utf-8"))]
    assert named == []


def _run(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=60)


def test_provisioner_connectors_lists_it(tmp_path):
    proc = _run(tmp_path, "connectors", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {c["type"]: c for c in json.loads(proc.stdout)["connectors"]}
    assert listed[TYPE]["distribution"] == "provisioner-example-connector"
    assert (listed[TYPE]["capabilities"], listed[TYPE]["write_only"]) == (
        ["create", "update", "disable", "enable", "delete"], ["pin"])
    assert listed[TYPE]["emulator"] is True
    text = _run(tmp_path, "connectors").stdout
    assert f"{TYPE}: Example directory: a tiny REST user API" in text


def test_check_reaches_its_emulator_with_a_config_using_it(tmp_path):
    from provisioner.connectors import connector
    from provisioner_example_connector.emulator import ExampleDirectoryEmulator
    token = "example-check-token-1b4e"
    found = connector(TYPE)
    (tmp_path / "mapping.toml").write_text(found.mapping_file().read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "people.csv").write_text("employee_id,given_name,family_name,email,department,title,status\n"
                                         "E1,Ann,Lee,ann@example.com,Support,Agent,active\n", encoding="utf-8")
    with ExampleDirectoryEmulator(token).start() as server:
        url = server.base_url
        (tmp_path / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.people]
type = "{TYPE}"
base_url = "{url}"
token = "env:EXAMPLE_TOKEN"
mapping = "mapping.toml"
""", encoding="utf-8")
        proc = _run(tmp_path, "check", env={"EXAMPLE_TOKEN": token})
        wrong = _run(tmp_path, "check", env={"EXAMPLE_TOKEN": "not-the-token-5e1a"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"target people: example directory at {url}/api/v1/users: 0 users" in proc.stdout
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "target people: FAILED: people: authentication refused (401): check the token" in wrong.stderr
    assert "not-the-token-5e1a" not in wrong.stdout + wrong.stderr
