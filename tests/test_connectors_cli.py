"""`provisioner connectors` and the registry behind it, through the real CLI: what each
installed connector can do, and a broken or mislabelled entry point reported in one sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provisioner.mapping import load_mapping

REPO = Path(__file__).resolve().parent.parent
BUILT_IN = ["ccc", "ccs", "clienttrack", "onecloud", "scim", "ytel", "ytel_ycc"]


def run(*args: str, cwd: Path | None = None, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    path = [str(REPO), *([str(extra_path)] if extra_path else [])]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER")},
           "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def listed(proc: subprocess.CompletedProcess) -> dict[str, dict]:
    """The built-in connectors listed (.ci/run also installs tests/example_connector)."""
    return {c["type"]: c for c in json.loads(proc.stdout)["connectors"] if c["distribution"] == "provisioner"}


def test_every_built_in_connector_is_listed_with_what_it_can_do():
    proc = run("connectors", "--json")
    assert proc.returncode == 0, proc.stderr
    found = listed(proc)
    assert list(found) == BUILT_IN
    assert all(c["distribution"] == "provisioner" for c in found.values())
    # CCS cannot create extensions; its agent settings are never shown back
    assert found["ccs"]["capabilities"] == ["update", "disable", "enable"]
    assert "max_chats" in found["ccs"]["write_only"] and "active" in found["ccs"]["write_only"]
    assert found["scim"]["capabilities"] == ["create", "update", "disable", "enable", "delete"]
    assert found["ytel"]["rate_limits"] == {"AMS calls": 150, "token endpoint": 25}
    assert found["scim"]["rate_limits"] == {}
    # scim2-server stands in for a SCIM directory: the connector ships no emulator of its own
    assert not found["scim"]["emulator"] and found["scim"]["default_mapping"] is None
    for kind in BUILT_IN:
        if kind != "scim":
            assert found[kind]["emulator"], kind
            # the default mapping is a file of the package and a valid mapping
            assert load_mapping(Path(found[kind]["default_mapping"])).attributes, kind
        assert Path(found[kind]["docs"]).name == "README.md"


def test_the_text_listing_says_the_same_in_lines():
    proc = run("connectors")
    assert proc.returncode == 0, proc.stderr
    ccs = next(block for block in proc.stdout.split("\n\n") if block.startswith("ccs: ")).splitlines()
    assert ccs[0].startswith("ccs: ")
    assert "  can:             update, disable, enable" in ccs
    assert "  emulator:        yes" in ccs
    assert any(line.startswith("  rate limits:     AMS calls 150/s") for line in proc.stdout.splitlines())


def _distribution(site: Path, points: str) -> Path:
    """An installed distribution that only registers entry points in the connectors group."""
    info = site / "acme_connectors-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-connectors\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[provisioner.connectors]\n{points}\n")
    return site


def test_a_broken_entry_point_is_named_with_its_error_and_the_rest_still_listed(tmp_path):
    site = _distribution(tmp_path / "site", "acme = acme_missing_module:connector\n"
                                            "relabelled = provisioner.connectors.scim:connector")
    proc = run("connectors", "--json", extra_path=site)
    assert proc.returncode == 1
    assert list(listed(proc)) == BUILT_IN
    assert json.loads(proc.stdout)["broken"] == [
        {"type": "acme", "error": "connector 'acme' (from acme-connectors) cannot be loaded: "
                                  "ModuleNotFoundError: No module named 'acme_missing_module'"},
        {"type": "relabelled", "error": "connector 'relabelled' (from acme-connectors): its entry point "
                                        "name must equal its type, which is 'scim'"}]
    text = run("connectors", extra_path=site)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert "error: connector 'acme' (from acme-connectors) cannot be loaded" in text.stderr


def test_a_config_naming_a_broken_connector_gets_its_sentence(tmp_path):
    site = _distribution(tmp_path / "site", "acme = acme_missing_module:connector")
    (tmp_path / "people.csv").write_text("employee_id\n")
    (tmp_path / "config.toml").write_text(f"""
[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.crm]
type = "acme"
base_url = "https://crm.example.com"
mapping = "{REPO / 'mappings' / 'directory.toml'}"
""")
    proc = run("check", "--offline", cwd=tmp_path, extra_path=site)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: config.toml: targets.crm.type: connector 'acme' (from "
                                   "acme-connectors) cannot be loaded: ModuleNotFoundError: No module "
                                   "named 'acme_missing_module'")
