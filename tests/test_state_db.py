"""The state DB on SQLite and on a real PostgreSQL: same schema, same behaviour, the run lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from provisioner.model import Change, Link, Plan, PlanItem, Rejected, TargetSummary
from provisioner.runlock import LockHeld
from provisioner.state import SCHEMA_HEAD, LinkRecord, RunRecord, StateDB

REPO = Path(__file__).resolve().parent.parent


def make_plan(plan_id="p1", created_at="2026-01-01T00:00:00.000+00:00", status="pending"):
    items = (
        PlanItem("i1", "dir", "create", "E1", None, {"userName": Change(None, "ada")}, "new",
                 attrs={"userName": "ada", "emails[0].value": "ada@example.com"},
                 lookup=(("userName", "ada"),)),
        PlanItem("i2", "dir", "update", "E2", "a2", {"title": Change("Agent", "Lead")}, "title changed"),
        PlanItem("i3", "crm", "conflict", "E3", None, {}, "two accounts match"),
    )
    targets = {"dir": TargetSummary(accounts=5, counts={"create": 1, "update": 1}, unmanaged=1),
               "crm": TargetSummary(accounts=2, counts={"conflict": 1}, unmanaged=0, blocked=True,
                                    block_reason="too many disables")}
    return Plan(plan_id, created_at, status, identities=3, rejected=(Rejected(7, "E7", "invalid email"),),
                targets=targets, items=items, adopt=(Link("dir", "E4", "a4"),))


@pytest.fixture
def db(db_url):
    state = StateDB(db_url)
    yield state
    state.close()


def test_a_plan_round_trips_with_its_items_in_order(db):
    plan = make_plan()
    db.save_plan(plan)
    loaded = db.load_plan("p1")
    assert loaded.to_dict() == plan.to_dict() and loaded.items == plan.items
    assert loaded.adopt == plan.adopt
    assert loaded.targets["crm"].counts["conflict"] == 1 and "blocked" not in loaded.targets["crm"].counts
    assert db.load_plan("p").plan_id == "p1"  # a unique prefix
    assert db.load_plan("nope") is None
    assert db.latest_plan_id() == "p1"


def test_pending_plans_follow_item_status_and_target(db):
    db.save_plan(make_plan("p1", "2026-01-01T00:00:00.000+00:00"))
    db.save_plan(make_plan("p2", "2026-01-02T00:00:00.000+00:00"))
    assert [p.id for p in db.pending_plans()] == ["p2", "p1"]
    for item in ("i1", "i2"):
        db.set_item_status("p1", item, "done", account_id="a9")
    assert [p.id for p in db.pending_plans()] == ["p2"]
    assert db.pending_plans("crm") == []  # a conflict waits for a person, not for an apply
    db.set_item_status("p2", "i1", "failed", error="HTTP 500")
    item = next(i for i in db.load_plan("p2").items if i.id == "i1")
    assert (item.status, item.error) == ("failed", "HTTP 500")
    assert [p.id for p in db.pending_plans("dir")] == ["p2"]
    db.set_plan_status("p1", "applied")
    assert db.load_plan("p1").status == "applied"


def test_runs_record_outcome_and_the_baseline(db):
    db.start_run("r1", "plan", "schedule")
    db.finish_run("r1", "ok", plan_id="p1", identities=10, successful=True, counts={"create": 2})
    db.start_run("r2", "apply", plan_id="p1")
    db.finish_run("r2", "failed", error="boom")
    runs = {r.id: r for r in db.runs()}
    assert runs["r1"].trigger == "schedule" and runs["r1"].counts == '{"create": 2}'
    assert runs["r2"].status == "failed" and runs["r2"].error == "boom" and runs["r2"].plan_id == "p1"
    assert db.baseline_identities() == 10


def test_links_move_with_their_account_and_keep_data(db):
    db.save_link("dir", "E1", "a1", {"extension": "201"})
    db.save_link("dir", "E2", "a2")
    assert db.links("dir") == {"E1": "a1", "E2": "a2"}
    db.save_link("dir", "E3", "a1")  # the account now belongs to E3
    assert db.links("dir") == {"E2": "a2", "E3": "a1"}
    db.save_link("dir", "E2", "a2", {"extension": "202"})
    assert db.link_data("dir")["E2"] == {"extension": "202"}
    assert db.link("dir", "E2").account_id == "a2" and db.link("dir", "E1") is None
    assert db.link_counts() == {"dir": 2}


def test_values_written_to_write_only_attributes_are_remembered_per_account(db):
    assert db.written("ccs") == {}
    db.save_written("ccs", "x1", {"active": True, "max_chats": "3"}, identity="E1", plan_id="p1")
    db.save_written("ccs", "x1", {"max_chats": "2"}, identity="E1", plan_id="p2")
    db.save_written("ccs", "x2", {"monitor": "true"})
    db.save_written("other", "x1", {"active": False})
    assert db.written("ccs") == {"x1": {"active": True, "max_chats": "2"}, "x2": {"monitor": "true"}}
    assert db.written("other") == {"x1": {"active": False}}


def test_audit_rows_filter_and_keep_the_newest(db):
    plan = make_plan()
    for n, outcome in enumerate(["done", "failed: HTTP 500", "done"]):
        db.audit(run_id=f"r{n}", plan_id="p1", item=plan.items[n % 2], account_id="a",
                 before={}, after={"n": n}, outcome=outcome)
    assert [a.run_id for a in db.audit_rows("dir")] == ["r0", "r1", "r2"]
    assert [a.run_id for a in db.audit_rows("dir", identity="E1", last=1)] == ["r2"]
    assert db.last_failure("dir").run_id == "r1"
    assert db.last_failure("crm") is None


def test_reopening_is_a_no_op_and_the_schema_is_at_head(db, db_url):
    db.save_link("dir", "E1", "a1")
    again = StateDB(db_url)
    assert again.links("dir") == {"E1": "a1"}
    with again.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == SCHEMA_HEAD == ScriptDirectory(str(REPO / "provisioner" / "migrations")).get_current_head()
    with again.engine.connect() as conn:
        assert "locks" in inspect(conn).get_table_names()
    again.close()


LATER_COLUMNS = [("plan_items", "person"), ("links", "disabled_at"), ("plans", "as_of")]   # (table, column) added by migrations after 0001


def test_a_db_made_before_migrations_is_adopted_without_losing_rows(db_url):
    # exactly what the first release did: create_all of the five tables
    engine = create_engine(db_url)
    old = [SQLModel.metadata.tables[n] for n in ("runs", "plans", "plan_items", "links", "audit")]
    SQLModel.metadata.create_all(engine, tables=old)
    with engine.begin() as conn:
        # columns later migrations add were not there yet
        for table, column in LATER_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute(LinkRecord.__table__.insert().values(
            target="dir", identity="E1", account_id="a1", data='{"x": 1}', created_at="t", updated_at="t"))
        conn.execute(RunRecord.__table__.insert().values(
            id="r1", kind="plan", trigger="cli", started_at="t", status="ok", successful=True,
            identities=42, counts="{}"))
    engine.dispose()
    db = StateDB(db_url)
    assert db.links("dir") == {"E1": "a1"} and db.link_data("dir") == {"E1": {"x": 1}}
    assert db.baseline_identities() == 42
    with db.lock("run", "test"):
        pass
    db.close()


# --- the run lock, between real processes -------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from provisioner.runlock import describe_holder
    from provisioner.state import StateDB
    url, lease, hold = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    db = StateDB(url)
    with db.lock("run", describe_holder("holder-process"), 0, lease):
        print("locked", flush=True)
        time.sleep(hold)
    print("released", flush=True)
""")


def start_holder(url: str, lease: float, hold: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(lease), str(hold)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_holder_is_refused_with_who_holds_it(db, db_url):
    holder = start_holder(db_url, lease=30, hold=60)
    try:
        with pytest.raises(LockHeld) as refused:
            with db.lock("run", "me", wait_seconds=0):
                pytest.fail("took a lock another process holds")
        assert "holder-process" in str(refused.value) and "since 20" in str(refused.value)
        with db.lock("other", "me", wait_seconds=0):  # another name is another lock
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_run_gets_the_lock_when_the_holder_finishes(db, db_url):
    holder = start_holder(db_url, lease=600, hold=1.0)
    with db.lock("run", "me", wait_seconds=120):   # a margin no load uses up, not a measurement
        # the holder let go by itself (its lease could not have run out), then we got it
        assert holder.wait(60) == 0 and holder.stdout.read().strip() == "released"


def test_a_killed_holders_lock_is_freed(db, db_url):
    # a lease far longer than the wait: only the holder's death can free the lock in time
    holder = start_holder(db_url, lease=600, hold=600)
    holder.kill()
    holder.wait()
    with db.lock("run", "me", wait_seconds=120):
        pass


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    # SQLite only: PostgreSQL's advisory lock dies with its connection anyway
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db = StateDB(url)
    holder = start_holder(url, lease=600, hold=600)   # a lease that would outlive the test
    holder.kill()
    holder.wait()
    with db.lock("run", "me", wait_seconds=0):   # no waiting for the lease
        pass
    live = start_holder(url, lease=600, hold=600)   # a live one on this host still holds
    try:
        with pytest.raises(LockHeld):
            with db.lock("run", "me", wait_seconds=0):
                pass
    finally:
        live.kill()
        live.wait()
    db.close()


def test_a_live_holders_lease_is_renewed_past_its_length(db, db_url):
    # a 6 s lease renewed every 2 s: lost only if the holder is starved of the CPU for 4 s
    holder = start_holder(db_url, lease=6, hold=600)
    try:
        first = lease_expiry(db)
        if first is not None:   # SQLite; PostgreSQL's advisory lock has no lease
            while time.time() < first + 1:   # the first lease has run out
                time.sleep(0.2)
            assert lease_expiry(db) > first
        with pytest.raises(LockHeld):
            with db.lock("run", "me", wait_seconds=0):
                pass
    finally:
        holder.kill()
        holder.wait()


def lease_expiry(db) -> float | None:
    with db.engine.connect() as c:
        return c.execute(text("SELECT expires FROM locks WHERE name = 'run'")).scalar()


# A POSIX process loses every fcntl lock it holds on a file when it closes ANY descriptor of
# that file. Opening the SQLite file from Python (to flock it for a migration, to create it)
# while a connection is open so dropped SQLite's own shared lock: another process closing its
# connection then took itself for the last one, checkpointed and deleted the WAL under this
# one, whose later commits went to a deleted file (lost: a lease renewal unseen, then
# "database disk image is malformed").
_READER = textwrap.dedent("""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1])
    print(c.execute("select count(*) from runs").fetchone()[0])
    c.close()
""")


def _runs_seen_by_another_process(db_file: Path) -> int:
    out = subprocess.run([sys.executable, "-c", _READER, str(db_file)], check=True,
                         capture_output=True, text=True)
    return int(out.stdout)


def test_another_process_closing_its_connection_cannot_pull_the_wal_from_under_an_open_state_db(tmp_path):
    db_file = tmp_path / "state" / "provisioner.db"
    db = StateDB(f"sqlite:///{db_file}")
    again = StateDB(f"sqlite:///{db_file}")    # a second opening in the same process: the same rule
    try:
        db.start_run("r1", "plan")
        assert _runs_seen_by_another_process(db_file) == 1
        assert Path(f"{db_file}-wal").exists()   # this process still has it open
        db.start_run("r2", "plan")
        again.start_run("r3", "plan")
        assert _runs_seen_by_another_process(db_file) == 3
    finally:
        again.close()
        db.close()
    assert _runs_seen_by_another_process(db_file) == 3
