"""`provisioner demo`: the whole job, end to end, with no account anywhere.

It writes a sample HR export, mappings and a config into a directory (a
temporary one unless --dir is given), starts local stand-ins for the targets -
each connector's emulator in this process (those whose SandboxSpec has a demo)
and scim2-server (an independent SCIM 2.0 implementation) as a generic SCIM
directory - and runs:
plan -> apply -> a change to the HR export -> plan -> apply -> plan (nothing left).

Secrets are throwaway values generated per run, written to files readable by
the owner only and referenced the way a real config takes them (`file:`), so
`--dir DIR --keep` leaves a config anyone can run `provisioner plan` with.
"""

from __future__ import annotations

import secrets as random_secrets
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

import click

from . import flow, render
from .config import load_config
from .model import APPLICABLE_OPS
from .sandbox.demo_targets import demo_targets
from .sandbox.scim_server import start_scim_server
from .state import StateDB

HEADER = "employee_id,given_name,family_name,email,department,title,team,role,timezone,work_phone,status"
# Twelve active people in Support: one leaver later is 1 disable in 12 accounts
# (8 %), under the default safety limit of 10 %, so the second plan is not blocked.
PEOPLE = [
    "E0001,Ada,Lovelace,ada.lovelace@example.com,Support,Agent,Customer Service,Agent,Europe/London,555-0101,active",
    "E0002,Grace,Hopper,grace.hopper@example.com,Support,Agent,Customer Service,Agent,America/New_York,555-0102,active",
    "E0003,Zoë,Ōtsuka,zoe.otsuka@example.com,Support,Agent,Customer Service,Agent,Asia/Tokyo,,active",
    "E0004,José,Núñez,jose.nunez@example.com,Support,Agent,Customer Service,Agent,America/Mexico_City,,inactive",
    "E0005,Alan,Turing,alan.turing@example.com,Research,Scientist,,,Europe/London,,active",
    "E0006,Katherine,Johnson,katherine.johnson@example.com,Support,Team Lead,Contact Center Support,\"Agent, Supervisor\",America/New_York,555-0106,active",
    "E0007,Edsger,Dijkstra,edsger.dijkstra@example.com,Support,Agent,Contact Center Support,Agent,Europe/Amsterdam,,active",
    "E0008,Barbara,Liskov,barbara.liskov@example.com,Support,Agent,Contact Center Support,Agent,America/New_York,,active",
    "E0009,Donald,Knuth,donald.knuth@example.com,Support,Agent,Customer Service,Agent,America/Los_Angeles,,active",
    "E0010,Frances,Allen,frances.allen@example.com,Support,Agent,Customer Service,Agent,America/New_York,,active",
    "E0011,Tim,Berners-Lee,tim.berners-lee@example.com,Support,Agent,Customer Service,Agent,Europe/London,,active",
    "E0012,Margaret,Hamilton,margaret.hamilton@example.com,Support,Agent,Contact Center Support,Agent,America/New_York,,active",
    "E0013,Linus,Torvalds,linus.torvalds@example.com,Support,Agent,Customer Service,Agent,Europe/Helsinki,,active",
    "E0014,Radia,Perlman,radia.perlman@example.com,Support,Agent,Customer Service,Agent,America/New_York,,active",
]
# The export a day later: a promotion, a leaver, a new hire.
CHANGES = [
    ("E0002 Grace Hopper is promoted: title Team Lead, roles Agent + Supervisor",
     "E0002,", "E0002,Grace,Hopper,grace.hopper@example.com,Support,Team Lead,Customer Service,"
               "\"Agent, Supervisor\",America/New_York,555-0102,active"),
    ("E0009 Donald Knuth has left (his row is gone)", "E0009,", None),
    ("E0015 Hedy Lamarr is hired", None,
     "E0015,Hedy,Lamarr,hedy.lamarr@example.com,Support,Agent,Contact Center Support,Agent,"
     "America/Los_Angeles,555-0115,active"),
]

DIRECTORY_MAPPING = '''# A generic SCIM 2.0 directory (scim2-server stands in for it).
scope = 'department eq "Support"'
correlate = ["userName"]

[attributes]
userName = "email"
"name.givenName" = { from = "given_name" }
"name.familyName" = { from = "family_name" }
"emails[0].value" = { from = "email" }
title = { from = "title" }
active = { from = "status", equals = "active" }
'''

CONFIG = '''# Written by `provisioner demo`: every target on a local stand-in.
[state]
url = "sqlite:///state/demo.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.directory]
type = "scim"
base_url = "{scim_url}"
token = "file:secrets/scim_token"
mapping = "mappings/directory.toml"

[policy]
missing = "disable"     # leavers are disabled, never deleted
'''


def write_people(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def changed_people() -> list[str]:
    rows = list(PEOPLE)
    for _, key, new in CHANGES:
        index = next((i for i, r in enumerate(rows) if key and r.startswith(key)), None)
        if index is None:
            rows.append(new)
        elif new is None:
            del rows[index]
        else:
            rows[index] = new
    return rows


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(value, encoding="utf-8")


def _secret_reference(root: Path, label: str, value: str) -> str:
    _write_secret(root / "secrets" / label, value)
    return f"file:secrets/{label}"


def _step(title: str) -> None:
    click.echo(f"\n== {title} ==")


def run_demo(directory: str | None = None, keep: bool = False) -> int:
    with ExitStack() as stack:
        root = Path(directory) if directory else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="provisioner-demo-")))
        (root / "mappings").mkdir(parents=True, exist_ok=True)
        (root / "state").mkdir(exist_ok=True)
        # the stand-ins start empty, so a state DB from an earlier demo in --dir means nothing
        (root / "state" / "demo.db").unlink(missing_ok=True)
        # throwaway credentials, given to the stand-ins and to the config alike
        token = random_secrets.token_hex(16)
        _write_secret(root / "secrets" / "scim_token", token)

        scim = start_scim_server(token)
        stack.callback(scim.stop)
        click.echo(f"demo: scim2-server (generic SCIM directory) at {scim.base_url}")
        vendors, vendor_tables = [], []
        for vendor in demo_targets(lambda label, value: _secret_reference(root, label, value)):
            vendor.emulator.start()
            stack.callback(vendor.emulator.stop)
            click.echo(f"demo: {vendor.label} at {vendor.emulator.base_url}")
            (root / "mappings" / f"{vendor.name}.toml").write_text(vendor.mapping, encoding="utf-8")
            vendor_tables.append(vendor.config(vendor.emulator.base_url))
            vendors.append(vendor)
        click.echo(f"demo: files in {root}")

        write_people(root / "people.csv", PEOPLE)
        (root / "mappings" / "directory.toml").write_text(DIRECTORY_MAPPING, encoding="utf-8")
        (root / "config.toml").write_text(CONFIG.format(scim_url=scim.base_url)
            + "".join(f"\n{table.strip()}\n" for table in vendor_tables), encoding="utf-8")
        settings = load_config(root / "config.toml")
        state = StateDB(settings.state.url)
        stack.callback(state.close)
        failed = 0
        with flow.open_targets(settings) as handles:
            def plan_and_apply(what: str, apply_title: str):
                nonlocal failed
                _step(what)
                plan = flow.build_plan(settings, state, handles).plan
                render.print_plan(plan, {}, apply_hint=False)
                _step(apply_title)
                result = flow.run_apply(settings, state, handles, plan)
                render.print_apply_result(plan, result, state)
                failed += result.failed + len(result.blocked_targets)

            plan_and_apply("1. plan: what would change", "2. apply that plan")
            for vendor in vendors:
                note = vendor.note(state.link_data(vendor.name)) if vendor.note else None
                if note:
                    click.echo(note)

            _step("3. the next day's HR export")
            for text, _, _ in CHANGES:
                click.echo(f"  {text}")
            write_people(root / "people.csv", changed_people())
            plan_and_apply("4. plan: the changes", "5. apply that plan")

            _step("6. plan again: nothing left to do")
            last = flow.build_plan(settings, state, handles).plan
            render.print_plan(last, {})
            left = sum(1 for i in last.items if i.op in APPLICABLE_OPS)
        if keep:
            click.echo(f"\nthe stand-ins keep running until Ctrl-C; in another shell try:\n"
                       f"  provisioner --config {root / 'config.toml'} plan")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
        return 1 if failed or left else 0
