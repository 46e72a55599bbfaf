"""Resuming a killed apply never sends a create twice: counted at a recording proxy.

The CLI applies a plan through tests/recording_proxy.py. The proxy forwards the
third create to the target (which makes the account) and withholds the answer;
the apply process is then killed with SIGKILL, leaving that item in flight in
the state DB exactly as a crash between sending and recording does. The next
apply must find that account by looking it up, and send creates only for the
items never started.

Three targets: scim2-server and the OneCloud emulator answer a duplicate create
with 409 (so a re-sent create would be caught and linked anyway, hiding the bug
from every check but the count), and the ClientTrack emulator, which creates a
duplicate row, as a real CTAPI does: there only the look-up prevents a duplicate.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import pytest

from conftest import CLIENTTRACK_API_KEY, CLIENTTRACK_SUBSCRIPTION, ONECLOUD_SECRET, ONECLOUD_TENANT, SCIM_TOKEN
from recording_proxy import Exchange, RecordingProxy
from default_mappings import shipped_mapping

REPO = Path(__file__).resolve().parent.parent
# every column one of the shipped mappings reads (a mapping naming a missing one is refused)
HEADER = "employee_id,given_name,family_name,email,department,title,work_phone,status,timezone,mobile_phone,role"
PEOPLE = {f"E{n}": f"person{n}@example.com" for n in range(1, 6)}
HELD = 3   # the create whose answer is withheld when the apply is killed


@dataclass
class Target:
    """How the test talks to one kind of target: its config, its create request, its accounts."""
    name: str
    config: Callable[[str], str]           # proxy base URL -> the [targets.NAME] table
    mapping: str                           # a file under mappings/
    env: dict
    create: str                            # a regex matching the create request's path
    login: Callable[[Exchange], str]       # the login name a create request asks for
    logins: Callable[[], list[str]]        # every account's login name, as the target holds them


def _scim(request, scim_server) -> tuple[Target, str]:
    def logins():
        body = httpx.get(scim_server.base_url + "/Users", params={"count": 1000},
                         headers={"Authorization": f"Bearer {SCIM_TOKEN}"}).json()
        return [u["userName"].lower() for u in body.get("Resources", [])]

    return Target("directory", lambda url: f"""type = "scim"
base_url = "{url}"
token = "env:E2E_SCIM_TOKEN"
""", "directory.toml", {"E2E_SCIM_TOKEN": SCIM_TOKEN}, r"/Users\Z",
                  lambda e: e.json()["userName"].lower(), logins), scim_server.base_url


def _onecloud(request, onecloud) -> tuple[Target, str]:
    def logins():
        with onecloud.lock:
            return [u["loginId"].lower() for u in onecloud.users.values() if u["loginId"] != "admin"]

    return Target("onecloud", lambda url: f"""type = "onecloud"
base_url = "{url}"
tenant = "{ONECLOUD_TENANT}"
client_id = "admin"
client_secret = "env:E2E_ONECLOUD_SECRET"
""", "onecloud.toml", {"E2E_ONECLOUD_SECRET": ONECLOUD_SECRET}, r"/users\Z",
                  lambda e: e.json()["userName"].lower(), logins), onecloud.base_url


def _clienttrack(request, clienttrack) -> tuple[Target, str]:
    def logins():
        with clienttrack.lock:
            return [r["UserName"].lower() for r in clienttrack.rows.values()]

    return Target("clienttrack", lambda url: f"""type = "clienttrack"
base_url = "{url}"
subscription_key = "env:E2E_CT_SUB"
api_key = "env:E2E_CT_KEY"
""", "clienttrack.toml", {"E2E_CT_SUB": CLIENTTRACK_SUBSCRIPTION, "E2E_CT_KEY": CLIENTTRACK_API_KEY},
                  r"/cto/Users\Z", lambda e: e.json()["UserName"].lower(), logins), clienttrack.base_url


@pytest.fixture(params=["scim2-server", "onecloud", "clienttrack (duplicates allowed)"])
def target(request):
    kind, fixture = {"scim2-server": (_scim, "scim_server"), "onecloud": (_onecloud, "onecloud"),
                     "clienttrack (duplicates allowed)": (_clienttrack, "clienttrack")}[request.param]
    return kind(request, request.getfixturevalue(fixture))


class Run:
    """A config directory whose one target is reached through `proxy`."""

    def __init__(self, root: Path, target: Target, proxy: RecordingProxy):
        self.root, self.target = root, target
        (root / target.mapping).write_text(shipped_mapping(target.mapping).read_text(encoding="utf-8"),
                                           encoding="utf-8")
        # one item at a time: when the third create is held, two are done and two never started
        (root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.{target.name}]
{target.config(proxy.base_url)}mapping = "{target.mapping}"
concurrency = 1
""", encoding="utf-8")
        rows = [f"{key},P,{key},{email},Support,Agent,555-0100,active,UTC,,Agent" for key, email in PEOPLE.items()]
        (root / "people.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
        self.env = {**os.environ, **target.env, "COLUMNS": "200"}
        self.env.pop("PROVISIONER_DB", None)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "provisioner", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(*args), cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.root / "state.db") as db:
            return db.execute(sql).fetchall()


def _the_nth_create(target: Target, n: int) -> Callable[[Exchange], bool]:
    seen = []

    def hold(exchange: Exchange) -> bool:
        if exchange.method == "POST" and re.search(target.create, exchange.path):
            seen.append(exchange)
            return len(seen) == n
        return False

    return hold


def test_a_killed_apply_resumes_without_sending_any_create_twice(tmp_path, target):
    target, upstream = target
    with RecordingProxy(upstream, hold=_the_nth_create(target, HELD)) as proxy:
        run = Run(tmp_path, target, proxy)
        plan_id = json.loads(run.run("plan", "--json").stdout)["plan_id"]
        apply = subprocess.Popen(run.command("apply", plan_id, "--yes"), cwd=tmp_path, env=run.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert proxy.held.wait(60), "the apply never sent its third create"
        finally:
            apply.kill()
            apply.wait()

        held = proxy.sent("POST", target.create)[HELD - 1]
        assert held.status in (200, 201), "the held create did not make the account"
        held_login = target.login(held)
        held_identity = next(k for k, e in PEOPLE.items() if e == held_login)
        assert dict(run.query("select identity, status from plan_items"))[held_identity] == "in_flight"
        sent_before = {target.login(e) for e in proxy.sent("POST", target.create)}
        assert sorted(target.logins()) == sorted(sent_before)
        # group commit: the kill fell between a batch's in-flight commit and its outcome commit,
        # so items of the batch that were never sent are in flight too (looked up, then created)
        statuses = dict(run.query("select identity, status from plan_items"))
        assert any(statuses[k] == "in_flight" for k, e in PEOPLE.items() if e not in sent_before), statuses

        mark = proxy.mark()
        run.run("apply", plan_id, "--yes")
        resent = [target.login(e) for e in proxy.sent("POST", target.create, since=mark)]

    # the resume sends a create for exactly the people never sent, none for an account that exists
    assert sorted(resent) == sorted(set(PEOPLE.values()) - sent_before)
    assert held_login not in resent
    assert sorted(target.logins()) == sorted(PEOPLE.values())   # one account each, no duplicate
    assert run.query(f"select outcome from audit where identity = '{held_identity}'") == [
        ("found on resume; linked",)]
    assert run.query("select count(distinct account_id), count(*) from links") == [(5, 5)]
    assert run.query("select distinct status from plan_items") == [("done",)]
