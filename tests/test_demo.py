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
    assert len(re.findall(r"^\+ create +ytel +E\d+", first, re.M)) == 12
    assert "OneCloud assigned extensions (kept with the links): E0001 2002" in first
    changes = sorted(re.findall(r"^[-+~] (\w+) +(\w+) +(E\d+)", second, re.M))
    assert changes == [("create", "directory", "E0015"), ("create", "onecloud", "E0015"),
                       ("create", "ytel", "E0015"),
                       ("disable", "directory", "E0009"), ("disable", "onecloud", "E0009"),
                       ("disable", "ytel", "E0009"),
                       ("update", "directory", "E0002"), ("update", "onecloud", "E0002"),
                       ("update", "ytel", "E0002")]
    assert 'roles: "Agent" → "Agent, Supervisor"' in second
    assert "applied (9 done)" in second
    assert "nothing to apply: the targets match the source" in last
    # the files are left for a run by hand, secrets only as owner-only files
    config = (tmp_path / "demo" / "config.toml").read_text(encoding="utf-8")
    assert 'client_secret = "file:secrets/onecloud_client_secret"' in config
    secret = (tmp_path / "demo" / "secrets" / "onecloud_client_secret")
    assert secret.stat().st_mode & 0o077 == 0 and secret.read_text() not in out
