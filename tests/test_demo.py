"""`provisioner demo` from a clean directory with no environment set up: it must
finish green and its second plan must show exactly the day's changes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_the_whole_job(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "provisioner", "demo", "--dir", str(tmp_path / "demo")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    first, rest = out.split("== 3. the next day's HR export ==")
    second, last = rest.split("== 6. plan again: nothing left to do ==")
    # both targets in one reconcile: 12 active Support people each
    assert len(re.findall(r"^\+ create +onecloud +E\d+", first, re.M)) == 12
    assert len(re.findall(r"^\+ create +directory +E\d+", first, re.M)) == 12
    # ClientTrack already held Ada's staff record: matched on UserName and linked, not created
    assert len(re.findall(r"^\+ create +clienttrack +E\d+", first, re.M)) == 11
    assert len(re.findall(r"^\+ create +ytel +E\d+", first, re.M)) == 12
    # YCC holds Ada's agent made by hand under user id 1001: found by e-mail and linked, not cloned
    assert len(re.findall(r"^\+ create +ytel_ycc +E\d+", first, re.M)) == 11
    assert not re.search(r"^\+ create +ytel_ycc +E0001", first, re.M)
    # OneCloud numbers extensions in the order creates arrive, which concurrent workers do not fix:
    # each of the 12 holds its own, and the link keeps it
    assigned = re.search(r"^OneCloud assigned extensions \(kept with the links\): (.*)$", first, re.M)
    pairs = dict(p.split() for p in assigned.group(1).split(", "))
    assert len(pairs) == 12 and "E0001" in pairs and len(set(pairs.values())) == 12
    assert all(ext.isdigit() and 2000 <= int(ext) < 3000 for ext in pairs.values())
    # the CCC emulator holds Ada already (matched by Username and linked) and an agent HR does not know
    assert len(re.findall(r"^\+ create +ccc +E\d+", first, re.M)) == 11
    assert not re.search(r"^\+ create +ccc +E0001", first, re.M)
    changes = sorted(re.findall(r"^[-+~] (\w+) +(\w+) +(E\d+)", second, re.M))
    assert [c for c in changes if c[1] == "ytel"] == [
        ("create", "ytel", "E0015"), ("disable", "ytel", "E0009"), ("update", "ytel", "E0002")]
    assert [c for c in changes if c[1] == "ytel_ycc"] == [
        ("create", "ytel_ycc", "E0015"), ("disable", "ytel_ycc", "E0009"), ("update", "ytel_ycc", "E0002")]
    assert 'user_group: "AGENTS" → "SUPERVISORS"' in second
    assert [c for c in changes if c[1] == "ccc"] == [("create", "ccc", "E0015"), ("disable", "ccc", "E0009")]
    assert [c for c in changes if c[1] == "clienttrack"] == [
        ("create", "clienttrack", "E0015"), ("disable", "clienttrack", "E0009"), ("update", "clienttrack", "E0002")]
    assert [c for c in changes if c[1] in ("ccs", "directory", "onecloud")] == [
        ("create", "directory", "E0015"), ("create", "onecloud", "E0015"),
        ("disable", "ccs", "E0009"), ("disable", "directory", "E0009"),
        ("disable", "onecloud", "E0009"),
        ("update", "directory", "E0002"), ("update", "onecloud", "E0002")]
    assert 'roles: "Agent" → "Agent, Supervisor"' in second
    assert f"applied ({len(changes)} done, 1 skipped)" in second    # the skipped one: CCS's manual item
    # CCS found its extensions by name (accents and case aside) and asks for the one it cannot make
    assert len(re.findall(r"^\^ enable +ccs +E\d+", first, re.M)) == 12
    assert re.search(r"^! manual +ccs +E0015\n +why: E0015 \(Hedy Lamarr\) has no CCS extension", last, re.M)
    assert "nothing to apply; 1 item(s) above need a person" in last
    # the files are left for a run by hand, secrets only as owner-only files
    config = (tmp_path / "demo" / "config.toml").read_text(encoding="utf-8")
    assert 'client_secret = "file:secrets/onecloud_client_secret"' in config
    secret = (tmp_path / "demo" / "secrets" / "onecloud_client_secret")
    assert secret.stat().st_mode & 0o077 == 0 and secret.read_text() not in out


def test_without_the_sandbox_extra_the_demo_says_what_to_install(tmp_path):
    # a production install leaves scim2-server out; a None entry in sys.modules hides it
    code = ("import sys; sys.modules['scim2_server'] = None; sys.argv = ['provisioner', 'demo', '--dir', "
            f"{str(tmp_path / 'demo')!r}]; from provisioner.cli import main; main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pip install 'provisioner[sandbox]'" in proc.stderr
