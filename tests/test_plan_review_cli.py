"""Plan review a person can do (issue 16): the real CLI, as a subprocess, against a real
scim2-server. A 2,000-create plan reads on about one screen, ends with the `Plan:` line,
and `apply` asks right below it; --full and --compact; the truths a blocked or an
unreadable plan must tell; attributes in the mapping's order."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from test_end_to_end import Workspace, row

PLAN_LINE = re.compile(r"^Plan: (\d+) to delete, (\d+) to create, (\d+) to update, (\d+) to disable, "
                       r"(\d+) to enable; (\d+) manual, (\d+) drift, (\d+) conflicts?, (\d+) blocked\.$")
ITEM = re.compile(r"^[-+~^!?] (create|update|disable|enable|manual|conflict) +\S+ +\S+")
# a mapping in an order no sorting gives: the plan must keep it
MAPPING = """scope = 'department eq "Support"'
correlate = ["userName"]

[attributes]
title = { from = "title" }
userName = "email"
"name.givenName" = { from = "given_name" }
active = { from = "status", equals = "active" }
"name.familyName" = { from = "family_name" }
"emails[0].value" = { from = "email" }
"""
MAPPING_ORDER = ["title", "userName", "name.givenName", "active", "name.familyName", "emails[0].value"]


def people(n: int) -> list[str]:
    return [row(f"E{i:05d}", f"Zoë{i}", f"Ōtsuka{i}", f"user{i}@example.com") for i in range(n)]


@pytest.fixture
def ws(tmp_path, scim_server):
    workspace = Workspace(tmp_path, scim_server)
    workspace.env.pop("COLUMNS")  # output to a pipe, as a script or a pager gets it
    yield workspace
    workspace.admin.close()


@pytest.fixture
def big(ws):
    """2,000 people, none of them on the target yet: a plan of 2,000 creates."""
    (ws.root / "mappings" / "directory.toml").write_text(MAPPING, encoding="utf-8")
    ws.people(*people(2000))
    return ws


def lines_of(proc) -> list[str]:
    return [line.rstrip() for line in proc.stdout.rstrip("\n").splitlines()]


def plan_id_of(lines: list[str]) -> str:
    return re.match(r"plan (\w+)  \(", lines[0]).group(1)


def answer(ws: Workspace, reply: str, *args: str) -> subprocess.CompletedProcess:
    """The CLI with a terminal on stdin (so that it may ask), `reply` typed ahead."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "provisioner", *args], cwd=ws.root, env=ws.env,
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        os.write(master, reply.encode())
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
    assert "Traceback" not in err, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_2000_create_plan_reads_on_one_screen_and_ends_with_the_plan_line(big):
    lines = lines_of(big.run("plan"))
    plan_id = plan_id_of(lines)  # the per-target summary leads
    assert len(lines) <= 200
    assert lines[-1] == "Plan: 0 to delete, 2000 to create, 0 to update, 0 to disable, 0 to enable; 0 manual, 0 drift, 0 conflicts, 0 blocked."
    assert lines[-2] == f"apply with: provisioner apply {plan_id}"
    creates = [l for l in lines if re.match(r"^\+ create +directory +E\d{5}", l)]
    assert len(creates) == 20
    assert (f"… and 1980 more creates on directory: provisioner show {plan_id} --target directory --full"
            in lines)

    shown = lines_of(big.run("show", plan_id))
    assert len(shown) <= 200 and plan_id_of(shown) == plan_id and shown[-1] == lines[-1]
    assert [l for l in shown if ITEM.match(l)] == creates


def test_full_shows_every_attribute_of_every_item_and_compact_one_line_each(big):
    plan_id = plan_id_of(lines_of(big.run("plan")))

    full = lines_of(big.run("show", plan_id, "--target", "directory", "--full"))
    assert PLAN_LINE.match(full[-1]).group(2) == "2000"
    starts = [n for n, l in enumerate(full) if ITEM.match(l)]
    assert len(starts) == 2000
    first = full[starts[0]:starts[1]]
    assert first[1] == "      why: E00000 is in the source and has no account"
    assert [l.split(":")[0].strip() for l in first[2:]] == MAPPING_ORDER
    assert first[2:] == ['      title: "Agent"', '      userName: "user0@example.com"',
                         '      name.givenName: "Zoë0"', "      active: true",
                         '      name.familyName: "Ōtsuka0"', '      emails[0].value: "user0@example.com"']

    compact = lines_of(big.run("plan", "--compact"))
    items = [l for l in compact if ITEM.match(l)]
    assert len(items) == 2000 and PLAN_LINE.match(compact[-1])
    assert not any(l.startswith("      ") for l in compact)  # nothing under an item
    assert len(compact) < 2000 + 30


def test_apply_asks_right_below_the_plan_line_without_repeating_the_items(big):
    plan_id = plan_id_of(lines_of(big.run("plan")))
    proc = answer(big, "n\n", "apply", plan_id)
    assert proc.returncode == 0
    lines = lines_of(proc)
    assert len(lines) <= 200
    [at] = [n for n, l in enumerate(lines) if PLAN_LINE.match(l)]
    assert lines[at + 1].startswith(f"Apply 2000 changes of plan {plan_id}? [y/N]")
    assert lines[at + 1].endswith("nothing applied") or lines[at + 2] == "nothing applied"
    assert not any(ITEM.match(l) for l in lines[at:])
    assert not any(l.startswith("apply with") for l in lines)  # it is the apply
    assert sum(1 for l in lines if ITEM.match(l)) == 20
    assert big.users() == {}


def test_a_blocked_plan_says_so_and_never_offers_to_apply(ws):
    ws.people(*people(10))
    ws.run("reconcile", "--yes")
    ws.people(*people(3))
    proc = ws.run("plan", check=3)
    lines = lines_of(proc)
    assert lines[-1] == "Plan: 0 to delete, 0 to create, 0 to update, 7 to disable, 0 to enable; 0 manual, 0 drift, 0 conflicts, 1 blocked."
    assert not any("apply with" in l for l in lines)
    assert "nothing to apply" not in proc.stdout and "match the source" not in proc.stdout
    assert any(l.startswith("blocked by the safety policy: directory; review the items above") for l in lines)
    # the recap: one line per target, next to the end (an estimate when the target was timed)
    recap = next(l for l in lines if re.match(r"directory  7 to disable( \(est\. [^)]+\))?  BLOCKED: ", l))
    assert "fewer than 50% of the 10" in recap
    # every disable in full, even on a blocked target
    assert len([l for l in lines if re.match(r"^- disable +directory +E\d{5}", l)]) == 7
    assert lines.count("      active: true → false") == 7

    shown = lines_of(ws.run("show", "latest"))
    assert shown[-1] == lines[-1] and not any("apply with" in l for l in shown)
    # apply: every change left is on the blocked target, so there is nothing to ask
    applied = answer(ws, "y\n", "apply", "latest")
    assert applied.returncode == 3 and "Apply " not in applied.stdout
    assert "not applied: target directory is blocked" in applied.stdout
    assert all(u["active"] for u in ws.users().values())


def test_a_target_that_could_not_be_read_never_matches_the_source(ws):
    ws.people(*people(5))
    ws.server.stop()
    proc = ws.run("plan", check=1)
    lines = lines_of(proc)
    assert "match the source" not in proc.stdout and "nothing to apply" not in proc.stdout
    assert not any("apply with" in l for l in lines)
    assert any(l.startswith("directory  NOT PLANNED: could not read its accounts") for l in lines)
    assert any(l.startswith("not a complete plan: the accounts of directory could not be read") for l in lines)
    assert lines[-1] == "Plan: 0 to delete, 0 to create, 0 to update, 0 to disable, 0 to enable; 0 manual, 0 drift, 0 conflicts, 1 blocked."
    shown = ws.run("show", "latest").stdout
    assert "match the source" not in shown and "not a complete plan" in shown


def test_attributes_keep_the_mappings_order_in_the_plan_and_the_stored_plan(ws):
    (ws.root / "mappings" / "directory.toml").write_text(MAPPING, encoding="utf-8")
    ws.people(*people(2))
    created = lines_of(ws.run("plan"))
    [line] = [created[n + 1] for n, l in enumerate(created) if l.startswith("+ create   directory  E00000")]
    assert line == ('      title: "Agent", userName: "user0@example.com", name.givenName: "Zoë0", '
                    'active: true, name.familyName: "Ōtsuka0", emails[0].value: "user0@example.com"')
    ws.run("apply", "latest", "--yes")
    ws.people(row("E00000", "Zoë0", "Nakamura", "user0@example.com", title="Lead"), people(2)[1])
    for out in (lines_of(ws.run("plan")), lines_of(ws.run("show", "latest"))):
        at = next(n for n, l in enumerate(out) if l.startswith("~ update   directory  E00000"))
        assert out[at + 1:at + 3] == ['      title: "Agent" → "Lead"',
                                      '      name.familyName: "Ōtsuka0" → "Nakamura"']
    plan = ws.plan()
    assert list(plan["items"][0]["changes"]) == ["title", "name.familyName"]


def test_show_target_names_a_target_of_the_plan(ws):
    ws.people(*people(1))
    ws.run("plan")
    refused = ws.run("show", "latest", "--target", "nope", check=2)
    assert "has no target named nope (it has: directory)" in refused.stderr


def test_reconcile_asks_right_below_the_plan_line_it_printed(ws):
    ws.people(*people(3))
    proc = answer(ws, "n\n", "reconcile")
    assert proc.returncode == 0
    lines = lines_of(proc)
    [at] = [n for n, l in enumerate(lines) if PLAN_LINE.match(l)]
    assert lines[at] == "Plan: 0 to delete, 3 to create, 0 to update, 0 to disable, 0 to enable; 0 manual, 0 drift, 0 conflicts, 0 blocked."
    assert lines[at + 1].startswith("Apply 3 changes of plan ") and "nothing applied" in "\n".join(lines[at + 1:])
    assert not any("apply with" in l for l in lines) and ws.users() == {}
