"""What the CLI imports before it does anything: `--help` and `show` leave the
network and database libraries they do not use unloaded (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provisioner.model import Plan, PlanItem, TargetSummary
from provisioner.state import StateDB

REPO = Path(__file__).resolve().parent.parent


def imported(args: list[str], cwd: Path, env: dict | None = None) -> set[str]:
    """Top-level names of every module `python -m provisioner ARGS` imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "provisioner", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
            if line.startswith("import time:")}


def test_help_imports_no_database_network_or_ldap_library(tmp_path):
    loaded = imported(["--help"], tmp_path)
    assert "click" in loaded  # the parse above did read the import lines
    assert not loaded & {"sqlalchemy", "sqlmodel", "alembic", "httpx", "ldap3", "pydantic", "rich"}


def test_show_imports_no_network_ldap_or_migration_library(tmp_path):
    (tmp_path / "config.toml").write_text(f"""
[state]
url = "sqlite:///{tmp_path}/state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.directory]
type = "scim"
base_url = "http://127.0.0.1:9/scim/v2"
token = "env:STARTUP_TEST_TOKEN"
mapping = "{REPO}/mappings/directory.toml"
""", encoding="utf-8")
    state = StateDB(f"sqlite:///{tmp_path}/state.db")
    item = PlanItem(id="i1", target="directory", op="create", identity="E1", account_id=None,
                    changes={}, reason="new in the source", attrs={"userName": "a@example.com"})
    state.save_plan(Plan(plan_id="p1", created_at="2024-01-01T00:00:00+00:00", status="pending",
                         identities=1, rejected=(), items=(item,),
                         targets={"directory": TargetSummary(accounts=0, counts={"create": 1}, unmanaged=0)}))
    state.close()
    loaded = imported(["show", "p1"], tmp_path, {"STARTUP_TEST_TOKEN": "x"})
    assert "sqlalchemy" in loaded  # show reads the state DB
    assert not loaded & {"alembic", "httpx", "ldap3"}
