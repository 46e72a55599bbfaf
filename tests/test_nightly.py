"""Nightly operation through the real CLI: schedule --once, the run lock between processes,
SIGTERM, notifications, person, JSON logs, and the same on a PostgreSQL state DB."""

from __future__ import annotations

import csv
import email.policy
import io
import json
import signal
import subprocess
import sys
import time
from email import message_from_string
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlmodel import select

from conftest import SCIM_TOKEN, bodies
from ports import closed_port_url
from recording_proxy import RecordingProxy
from provisioner.runlock import LockRecord
from provisioner.state import PlanItemRecord, StateDB
from scripted_server import Reply, ScriptedServer
from test_end_to_end import ADA, GRACE, Workspace, row
from test_notify import smtp_server  # noqa: F401  (a fixture: a real SMTP server on loopback)

HOOK_SECRET = "T00/B00/hook-secret-9d3e"
PEOPLE = [row(f"E1{n:03d}", f"Given{n}", f"Family{n}", f"p{n}@example.com") for n in range(8)]


def nightly(ws: Workspace, hook=None, auto_apply=False, db_url=None, dead_hook=False, smtp=None,
            **target_extra) -> Workspace:
    """Give the workspace a [schedule] and [notify] (with `dead_hook`, a dead webhook before the live one)."""
    ws.write_config(**target_extra)
    extra = f"""
[schedule]
cron = "0 2 * * *"
timezone = "Europe/Berlin"
auto_apply = {"true" if auto_apply else "false"}

[lock]
wait_seconds = 0
"""
    if hook is not None:
        ws.env["HOOK_URL"] = f"{hook.url}/services/{HOOK_SECRET}"
        dead = f'"{closed_port_url()}", ' if dead_hook else ""
        extra += f'\n[notify]\nwebhooks = [{dead}"env:HOOK_URL"]\ntimeout = 15\n'
    if smtp is not None:
        extra += ("" if hook is not None else "\n[notify]\n") + (
            f'[notify.smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nfrom = "provisioner@example.com"\n'
            'to = ["it@example.com"]\n')
    with open(ws.root / "config.toml", "a", encoding="utf-8") as config:
        config.write(extra)
    if db_url:
        ws.env["PROVISIONER_DB"] = db_url
    return ws


def popen(ws: Workspace, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "provisioner", *args], cwd=ws.root, env=ws.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def until(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def ws(tmp_path, scim_server):
    workspace = Workspace(tmp_path, scim_server)
    yield workspace
    workspace.admin.close()


def test_once_without_auto_apply_stores_the_plan_and_asks_for_review(ws, hook):
    nightly(ws, hook, dead_hook=True)
    ws.people(ADA, GRACE)
    result = ws.run("schedule", "--once")
    assert "waiting for review" in result.stdout
    assert ws.users() == {}
    [doc] = bodies(hook)  # the dead webhook before it did not stop delivery, nor fail the run
    assert doc["event"] == "review" and doc["counts"] == {"create": 2}
    assert doc["text"].startswith(f"provisioner: plan {doc['plan_id']} is waiting for review")
    assert "notify.webhooks[0]" in result.stderr and "not delivered" in result.stderr
    runs = json.loads(ws.run("runs", "--json").stdout)
    assert runs[0]["trigger"] == "schedule" and runs[0]["plan_id"] == doc["plan_id"]
    status = json.loads(ws.run("status", "--json").stdout)
    assert status["directory"]["pending_plans"] == [doc["plan_id"]]
    ws.run("apply", doc["plan_id"], "--yes")
    assert set(ws.users()) == {"ada@example.com", "grace.hopper@example.com"}


def test_a_plan_for_review_sends_its_markdown_summary_and_mails_the_html_report(ws, hook, smtp_server):
    nightly(ws, hook, smtp=smtp_server)
    ws.people(ADA, row("E0002", "Grace", "Hopper", "grace@example.com", title="<script>alert(1)</script>"))
    ws.run("schedule", "--once")
    [doc] = bodies(hook)
    markdown = doc["summary_markdown"]
    assert markdown.startswith(f"## Plan {doc['plan_id']}")
    assert "| directory | 0 | 0 | 2 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | no |" in markdown
    [(_, _, content)] = smtp_server.messages
    mail = message_from_string(content, policy=email.policy.default)
    assert mail["Subject"] == f"provisioner: plan {doc['plan_id']} is waiting for review"
    body = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith(doc["text"]) and markdown in body
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"plan-{doc['plan_id']}.html"
    assert attachment.get_content_type() == "text/html"
    report = attachment.get_content()
    assert report.startswith("<!doctype html>") and "ada@example.com" in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report and "<script>alert(1)" not in report


def test_a_plan_whose_only_items_need_a_person_still_notifies(tmp_path, hook):
    twins = [{"id": f"u{n}", "userName": "ada@example.com", "active": True,
              "name": {"givenName": "Ada", "familyName": "Lovelace"}} for n in (1, 2)]

    def two_accounts_for_ada(request):
        return Reply(200, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                           "totalResults": 2, "startIndex": 1, "itemsPerPage": 2, "Resources": twins})

    with ScriptedServer(respond=two_accounts_for_ada) as target:
        ws = nightly(Workspace(tmp_path, SimpleNamespace(base_url=target.url)), hook, auto_apply=True)
        ws.people(ADA)
        result = ws.run("schedule", "--once")
        assert all(r.method == "GET" for r in target.requests)  # nothing was applied
    assert "some items only a person can do" in result.stdout
    [doc] = bodies(hook)
    assert doc["event"] == "manual" and doc["counts"] == {"conflict": 1}
    assert doc["text"].startswith(f"provisioner: plan {doc['plan_id']} has 1 item(s) only a person can do")
    assert "### Items that need a person" in doc["summary_markdown"] and "matches 2 accounts" in doc["summary_markdown"]
    ws.admin.close()


def test_the_scheduler_reads_a_changed_config_at_its_next_cycle(ws, caplog, monkeypatch):
    from apscheduler.schedulers.blocking import BlockingScheduler
    from provisioner.config import load_config
    from provisioner.scheduler import NightlyJob, make_trigger
    from provisioner.stopping import StopFlag

    nightly(ws)
    ws.people(ADA)
    monkeypatch.setenv("E2E_SCIM_TOKEN", ws.env["E2E_SCIM_TOKEN"])
    monkeypatch.chdir(ws.root)
    config = ws.root / "config.toml"
    settings = load_config(config)
    scheduler = BlockingScheduler()
    scheduler.add_job(lambda: None, make_trigger(settings.schedule), id="reconcile")
    state = StateDB(f"sqlite:///{ws.root / 'state' / 'provisioner.db'}")
    job = NightlyJob(config, settings, state, StopFlag(), scheduler)
    try:
        assert job().event == "review" and ws.users() == {}
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("auto_apply = false", "auto_apply = true")
                          .replace('cron = "0 2 * * *"', 'cron = "30 4 * * 1-5"'), encoding="utf-8")
        cycle = job()  # the same scheduler process, the new config
        assert cycle.applied and set(ws.users()) == {"ada@example.com"}
        trigger = scheduler.get_job("reconcile").trigger
        assert str(trigger.fields[trigger.FIELD_NAMES.index("hour")]) == "4"
        config.write_text("[schedule\n", encoding="utf-8")
        assert job() is None  # a broken config skips the cycle, the scheduler lives on
        assert "the config has a mistake" in caplog.text and "line 1" in caplog.text
    finally:
        job.state.close()


def test_once_with_auto_apply_applies_and_a_blocked_plan_waits(ws, hook):
    # one leaver of two is below percent_floor: a target allowing no disables at all blocks it
    nightly(ws, hook, auto_apply=True, max_disable_count=0)
    ws.people(ADA, GRACE)
    assert "applied" in ws.run("schedule", "--once").stdout
    assert len(ws.users()) == 2 and bodies(hook) == []  # nothing needed a person
    ws.people(ADA)  # disabling 1 account is over max_disable_count = 0
    blocked = ws.run("schedule", "--once", check=3)
    assert "BLOCKED" in blocked.stdout
    assert all(u["active"] for u in ws.users().values())
    [doc] = bodies(hook)
    assert doc["event"] == "blocked" and "directory" in doc["blocked"]
    status = json.loads(ws.run("status", "--json").stdout)["directory"]
    assert status["last_successful_run"] is not None and status["pending_plans"] == [doc["plan_id"]]


def test_failed_items_of_an_auto_applied_cycle_are_notified(tmp_path, hook):
    def refuse_creates(request):
        if request.method == "GET":
            return Reply(200, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                               "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
        return Reply(400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                           "detail": "department is not allowed"})

    with ScriptedServer(respond=refuse_creates) as target:
        ws = nightly(Workspace(tmp_path, SimpleNamespace(base_url=target.url)), hook, auto_apply=True)
        ws.people(ADA, GRACE)
        result = ws.run("schedule", "--once", check=1)
    assert "applied with failures" in result.stdout
    [doc] = bodies(hook)
    assert doc["event"] == "failed" and doc["counts"] == {"failed": 2}
    assert {f["identity"] for f in doc["failures"]} == {"E0001", "E0002"}
    assert all("department is not allowed" in f["error"] for f in doc["failures"])
    assert doc["text"].startswith("provisioner: 2 item(s) FAILED in run ")
    ws.admin.close()


def lock_holder(db_url: str) -> str | None:
    db = StateDB(db_url)
    try:
        with db.session() as s:
            record = s.exec(select(LockRecord)).first()
            return record.holder if record else None
    finally:
        db.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_reconciles_at_once_one_runs_the_other_waits_or_exits_6(ws, request, backend):
    db_url = (f"sqlite:///{ws.root / 'state' / 'provisioner.db'}" if backend == "sqlite"
              else request.getfixturevalue("pg_url"))
    # 8 creates at 0.4 request/s: about 18 s, so the holder still holds when a
    # second process has started, even on a machine so loaded that a CLI start takes seconds
    nightly(ws, db_url=db_url, rate_limit=0.4)
    ws.people(*PEOPLE)
    first = popen(ws, "reconcile", "--yes")
    holder = until(lambda: lock_holder(db_url))
    assert holder.startswith("reconcile pid")
    refused = ws.run("reconcile", "--yes", "--wait", "0", check=6)
    assert "another run holds the lock" in refused.stderr and "reconcile pid" in refused.stderr
    waited = ws.run("reconcile", "--yes", "--wait", "120")
    assert first.wait(120) == 0, first.stderr.read()
    assert "nothing to apply" in waited.stdout  # it planned after the first had finished
    assert len(ws.users()) == 8


def test_sigterm_lets_the_current_items_finish_and_a_later_apply_resumes(ws):
    nightly(ws, auto_apply=True, rate_limit=2, concurrency=1)
    ws.people(*PEOPLE)
    proc = popen(ws, "schedule", "--once")
    db = StateDB(f"sqlite:///{ws.root / 'state' / 'provisioner.db'}")

    def done() -> int:
        with db.session() as s:
            return len(s.exec(select(PlanItemRecord).where(PlanItemRecord.status == "done")).all())
    until(lambda: done() >= 1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped; the rest stays pending" in out and "Traceback" not in err
    created = len(ws.users())
    assert 1 <= created < 8
    with db.session() as s:
        statuses = [r.status for r in s.exec(select(PlanItemRecord))]
    assert statuses.count("pending") == 8 - created and "in_flight" not in statuses
    ws.run("apply", "latest", "--yes")
    assert len(ws.users()) == 8
    db.close()


def apply_in_background(ws: Workspace) -> tuple[subprocess.Popen, StateDB]:
    """A plan of 8 creates, applied at 1 item/s in a child process, with one item done."""
    nightly(ws, rate_limit=2, concurrency=1)
    ws.people(*PEOPLE)
    ws.run("plan")
    proc = popen(ws, "apply", "latest", "--yes")
    db = StateDB(f"sqlite:///{ws.root / 'state' / 'provisioner.db'}")

    def done() -> int:
        with db.session() as s:
            return len(s.exec(select(PlanItemRecord).where(PlanItemRecord.status == "done")).all())
    until(lambda: done() >= 1)
    return proc, db


def test_ctrl_c_during_apply_finishes_the_items_in_flight_and_records_a_stopped_run(ws):
    proc, db = apply_in_background(ws)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "SIGINT received: finishing the items in progress" in err
    assert "stopped: the rest of plan" in err and "resume with: provisioner apply" in err
    created = len(ws.users())
    assert 1 <= created < 8
    with db.session() as s:
        statuses = [r.status for r in s.exec(select(PlanItemRecord))]
    assert statuses.count("done") == created and statuses.count("pending") == 8 - created
    assert "in_flight" not in statuses
    [apply_run, plan_run] = json.loads(ws.run("runs", "--json").stdout)[:2]
    assert apply_run["kind"] == "apply" and apply_run["status"] == "stopped" and apply_run["error"] is None
    assert apply_run["counts"] == {"done": created}
    plan = json.loads(ws.run("show", "latest", "--json").stdout)
    assert plan["status"] == "partial"
    ws.run("apply", "latest", "--yes")
    assert len(ws.users()) == 8
    assert json.loads(ws.run("show", "latest", "--json").stdout)["status"] == "applied"
    db.close()


def test_a_second_ctrl_c_exits_at_once_and_the_plan_still_resumes(ws):
    # the second create's answer is withheld, so the first Ctrl-C has an item in flight to wait
    # for and the second one finds the apply still waiting, however loaded the machine is
    real = ws.server
    posts = []

    def second_create(seen) -> bool:
        if seen.method == "POST" and seen.path.endswith("/Users"):
            posts.append(seen)
        return len(posts) == 2
    with RecordingProxy(real.base_url, hold=second_create) as proxy:
        ws.server = SimpleNamespace(base_url=proxy.base_url)
        nightly(ws, concurrency=1)
        ws.people(*PEOPLE)
        ws.run("plan")
        proc = popen(ws, "apply", "latest", "--yes")
        assert proxy.held.wait(60)
        proc.send_signal(signal.SIGINT)
        until(lambda: "SIGINT received" in proc.stderr.readline())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "SIGINT again: exiting now" in err and "Traceback" not in err
    ws.server = real
    nightly(ws, concurrency=1)
    ws.run("apply", "latest", "--yes")   # the held create reached the server: found, not sent again
    users = ws.users()
    assert len(users) == 8 and {u["userName"] for u in users.values()} == {f"p{n}@example.com" for n in range(8)}
    db = StateDB(f"sqlite:///{ws.root / 'state' / 'provisioner.db'}")
    with db.session() as s:
        assert {r.status for r in s.exec(select(PlanItemRecord))} == {"done"}
    db.close()


def test_the_long_running_scheduler_stops_cleanly_on_sigterm(ws):
    nightly(ws)
    ws.people(ADA)
    proc = popen(ws, "schedule")
    line = proc.stdout.readline()
    assert "scheduler: cron '0 2 * * *' (Europe/Berlin), auto_apply off; next run at" in line
    assert "T02:00:00+01:00" in line or "T02:00:00+02:00" in line
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err


def test_person_shows_source_link_account_and_changes(ws):
    nightly(ws)
    ws.people(ADA, GRACE)
    ws.run("reconcile", "--yes")
    ws.people(row("E0001", "Ada", "Lovelace", "ada@example.com", title="Countess"), GRACE)
    ws.run("reconcile", "--yes")
    report = json.loads(ws.run("person", "E0001", "--json").stdout)
    assert report["source"]["attrs"]["title"] == "Countess"
    entry = report["targets"]["directory"]
    account_id = ws.users()["ada@example.com"]["id"]
    assert entry["link"]["account_id"] == account_id
    assert entry["account"]["active"] is True and entry["account"]["attrs"]["title"] == "Countess"
    assert [c["op"] for c in entry["changes"]] == ["create", "update"]
    assert entry["changes"][-1]["after"] == {"title": "Countess"}
    text_out = ws.run("person", "e0001").stdout  # the key as typed by a person
    assert "linked to account" in text_out and "Countess" in text_out
    unknown = ws.run("person", "E9999", "--json", check=1)
    assert json.loads(unknown.stdout)["targets"]["directory"]["link"] is None


def test_audit_exports_every_change_sent_with_before_after_run_plan_and_outcome(ws):
    nightly(ws)
    ws.people(ADA, GRACE)
    ws.run("reconcile", "--yes")
    ws.people(row("E0001", "Ada", "Lovelace", "ada@example.com", title="Countess"), GRACE)
    ws.run("reconcile", "--yes")
    runs = {r["plan_id"]: r["id"] for r in json.loads(ws.run("runs", "--json").stdout) if r["kind"] == "apply"}
    rows = list(csv.DictReader(io.StringIO(ws.run("audit").stdout)))
    assert list(rows[0]) == ["at", "run_id", "plan_id", "item_id", "target", "op", "identity", "account",
                             "attribute", "before", "after", "outcome"]
    creates = [r for r in rows if r["op"] == "create"]
    assert {r["identity"] for r in creates} == {"E0001", "E0002"} and all(r["before"] == "" for r in creates)
    assert {"userName", "active"} <= {r["attribute"] for r in creates if r["identity"] == "E0001"}
    [update] = [r for r in rows if r["op"] == "update"]
    assert (update["identity"], update["attribute"], update["before"], update["after"], update["outcome"]) == (
        "E0001", "title", "Agent", "Countess", "done")
    assert update["run_id"] == runs[update["plan_id"]] and update["account"] == ws.users()["ada@example.com"]["id"]

    mine = json.loads(ws.run("audit", "--person", "e0001", "--target", "directory", "--format", "json").stdout)
    assert [c["op"] for c in mine] == ["create", "update"]
    assert mine[1]["before"] == {"title": "Agent"} and mine[1]["after"] == {"title": "Countess"}
    later = ws.run("audit", "--since", "2999-01-01").stdout
    assert later.strip() == "at,run_id,plan_id,item_id,target,op,identity,account,attribute,before,after,outcome"
    since_now = json.loads(ws.run("audit", "--since", mine[1]["at"], "--format", "json").stdout)
    assert [c["op"] for c in since_now] == ["update"]
    wrong = ws.run("audit", "--since", "last tuesday", check=2)
    assert "--since" in wrong.stderr and "'last tuesday' is not a date or time" in wrong.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_no_secret_in_json_logs_text_logs_or_the_db(ws, hook, request, backend):
    db_url = (f"sqlite:///{ws.root / 'state' / 'provisioner.db'}" if backend == "sqlite"
              else request.getfixturevalue("pg_url"))
    nightly(ws, hook, db_url=db_url, max_disable_count=0)   # the leaver below blocks the cycle
    ws.people(ADA, GRACE)
    outputs = [ws.run("-v", "--log-format", "json", "schedule", "--once")]
    plan_id = bodies(hook)[0]["plan_id"]
    outputs.append(ws.run("-v", "--log-format", "json", "apply", plan_id, "--yes"))
    json_lines = [json.loads(line) for line in outputs[-1].stderr.splitlines()]
    items = [line for line in json_lines if line["message"].startswith("apply run=")]
    assert len(items) == 2
    assert {(i["target"], i["op"], i["plan_id"]) for i in items} == {("directory", "create", plan_id)}
    assert {i["identity"] for i in items} == {"E0001", "E0002"} and all(i["run_id"] for i in items)
    ws.people(ADA)
    outputs += [ws.run("-v", "schedule", "--once", check=3), ws.run("-v", "person", "E0001")]
    logs = "".join(p.stdout + p.stderr for p in outputs)
    assert "apply run=" in logs and "HTTP Request: POST" in logs  # the lines were there to search
    assert len(bodies(hook)) == 2
    for secret in (SCIM_TOKEN, HOOK_SECRET):
        assert secret not in logs
        if backend == "sqlite":
            assert secret.encode() not in (ws.root / "state" / "provisioner.db").read_bytes()
        else:
            db = StateDB(db_url)
            with db.engine.connect() as conn:
                for table in ("runs", "plans", "plan_items", "links", "audit", "locks"):
                    dump = "".join(map(str, conn.execute(text(f"SELECT * FROM {table}")).all()))
                    assert secret not in dump, table
            db.close()
