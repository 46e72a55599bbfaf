"""The state DB's bookkeeping queries on SQLite and PostgreSQL: the baselines
the source guard compares against, when a target last matched the source,
plan op counts, links saved in a batch, the run list and the plan a prefix
names. tests/test_state_db.py has the round trips; these pin the rest."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from provisioner.errors import ConfigError
from provisioner.model import Change, Plan, PlanItem, TargetSummary
from provisioner import state as state_module
from provisioner.state import SCHEMA_HEAD, StateDB

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def db(db_url, monkeypatch):
    # runs a millisecond apart would tie: each stamp is a second after the last
    ticks = iter(range(10_000))
    monkeypatch.setattr(state_module, "utcnow",
                        lambda: (START + timedelta(seconds=next(ticks))).isoformat(timespec="milliseconds"))
    state = StateDB(db_url)
    yield state
    state.close()


def plan(plan_id, created_at="2026-01-01T00:00:00.000+00:00", items=(), source_info=None, held=0):
    return Plan(plan_id, created_at, "pending", identities=len(items), rejected=(),
                targets={"dir": TargetSummary(accounts=3, counts={}, unmanaged=0, held=held)},
                items=tuple(items), source_info=source_info or {})


def item(item_id, target="dir", op="create", identity="E1", person=None):
    return PlanItem(item_id, target, op, identity, None, {"title": Change(None, "Agent")}, "new",
                    person=person, status="pending")


def run(db, run_id, kind="plan", status="ok", plan_id=None, successful=False, identities=None):
    db.start_run(run_id, kind, plan_id=plan_id)
    db.finish_run(run_id, status, plan_id=plan_id, successful=successful, identities=identities)
    return next(r.finished_at for r in db.runs() if r.id == run_id)


def test_each_sources_baseline_comes_from_the_last_successful_runs_plan(db):
    assert db.baseline_sources() == {}
    db.save_plan(plan("p1", source_info={"sources": {"hr": {"identities": 7, "rejected": 1}}}))
    db.save_plan(plan("p2", source_info={"sources": {"hr": {"identities": 9}, "ldap": {"rejected": 2}}}))
    db.save_plan(plan("p3", source_info={"sources": {"hr": {"identities": 1}}}))
    run(db, "r1", plan_id="p1", successful=True)
    assert db.baseline_sources() == {"hr": 7}
    run(db, "r2", plan_id="p2", successful=True)
    run(db, "r3", plan_id="p3", status="failed")          # not successful: not a baseline
    assert db.baseline_sources() == {"hr": 9, "ldap": 0}
    db.save_plan(plan("p4"))                              # a single source records no counts
    run(db, "r4", plan_id="p4", successful=True)
    assert db.baseline_sources() == {}
    run(db, "r5", successful=True)                        # a successful run without a plan
    assert db.baseline_sources() == {}


def test_the_identity_baseline_is_the_newest_successful_run(db):
    assert db.baseline_identities() is None
    run(db, "r1", successful=True, identities=10)
    run(db, "r2", successful=True, identities=12)
    run(db, "r3", status="failed", identities=1)
    assert db.baseline_identities() == 12


def test_a_target_last_matched_the_source_when_its_plan_was_applied_or_a_run_had_nothing_to_do(db):
    assert db.last_success("dir") is None
    db.save_plan(plan("p1", items=[item("i1")]))
    db.save_plan(plan("p2", items=[item("i2", target="crm")]))
    applied = run(db, "r1", kind="apply", plan_id="p1")
    run(db, "r2", kind="apply", plan_id="p2")             # another target's plan
    assert db.last_success("dir") == applied
    assert db.last_success("crm") > applied
    assert db.last_success("other") is None
    run(db, "r3", kind="apply", status="failed", plan_id="p1")
    assert db.last_success("dir") == applied
    in_step = run(db, "r4", successful=True)              # a run that found nothing to do
    assert db.last_success("dir") == in_step and db.last_success("other") == in_step
    run(db, "r5", kind="plan", plan_id="p1")              # planned, not applied
    assert db.last_success("dir") == in_step


def test_plan_op_counts_per_plan(db):
    db.save_plan(plan("p1", items=[item("a"), item("b", identity="E2"), item("c", op="update")]))
    db.save_plan(plan("p2", items=[item("d", op="disable")]))
    db.save_plan(plan("p3", items=[item("e")]))
    assert db.plan_op_counts(["p1", "p2", "nope"]) == {"p1": {"create": 2, "update": 1}, "p2": {"disable": 1}}
    assert db.plan_op_counts([]) == {}


def test_save_links_in_a_batch_moves_accounts_keeps_data_and_stays_on_its_target(db):
    db.save_link("dir", "E1", "a1", {"extension": "201"})
    db.save_link("dir", "E2", "a2", {"extension": "202"})
    db.save_link("dir", "E5", "a5")
    db.save_link("crm", "E1", "a1", {"crm": "yes"})
    db.save_link("crm", "E9", "a3")
    db.save_links("dir", [
        ("E1", "a1", None),                  # relinked without data: keeps its data
        ("E2", "a2", {"extension": "299"}),  # relinked with data: replaces it
        ("E3", "a3", {"extension": "203"}),  # new, with data
        ("E4", "a5", None),                  # takes E5's account: E5's link goes
        ("E6", "a6", {"x": "first"}),
        ("E6", "a7", None),                  # an identity's last link wins
    ])
    assert db.links("dir") == {"E1": "a1", "E2": "a2", "E3": "a3", "E4": "a5", "E6": "a7"}
    data = db.link_data("dir")
    assert data == {"E1": {"extension": "201"}, "E2": {"extension": "299"}, "E3": {"extension": "203"},
                    "E4": {}, "E6": {}}
    # the other target's links, with the same identities and accounts, are untouched
    assert db.links("crm") == {"E1": "a1", "E9": "a3"}
    assert db.link_data("crm")["E1"] == {"crm": "yes"}
    db.save_links("dir", [])
    assert db.links("dir")["E1"] == "a1"


def test_save_links_moves_an_account_between_two_linked_identities(db):
    db.save_links("dir", [("E1", "a1", {"n": 1}), ("E2", "a2", {"n": 2})])
    db.save_links("dir", [("E2", "a1", None)])
    assert db.links("dir") == {"E2": "a1"}
    assert db.link_data("dir") == {"E2": {"n": 2}}


def test_runs_newest_first_and_limited(db):
    for n in range(4):
        run(db, f"r{n}")
    assert [r.id for r in db.runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.id for r in db.runs(limit=2)] == ["r3", "r2"]


def test_finish_run_keeps_what_it_is_not_told(db):
    db.start_run("r1", "apply", plan_id="p1")
    db.finish_run("r1", "ok", identities=5)
    db.finish_run("r1", "ok")
    record = db.runs()[0]
    assert record.plan_id == "p1" and record.identities == 5 and record.error is None
    assert record.finished_at is not None and record.finished_at > record.started_at


def test_plan_prefix_latest_plan_and_item_fields(db):
    assert db.latest_plan_id() is None
    db.save_plan(plan("abc1", "2026-01-01T00:00:00.000+00:00", items=[item("i1", person="Ada L")], held=2))
    db.save_plan(plan("abc2", "2026-01-03T00:00:00.000+00:00"))
    db.save_plan(plan("xyz", "2026-01-02T00:00:00.000+00:00"))
    assert db.latest_plan_id() == "abc2"
    assert db.load_plan("abc") is None                    # two plans start so: not one
    assert db.load_plan("xy").plan_id == "xyz"
    loaded = db.load_plan("abc1")
    assert loaded.items[0].person == "Ada L" and loaded.items[0].status == "pending"
    assert loaded.targets["dir"].held == 2
    assert db.load_plan("xyz").source_info == {}


def test_a_url_that_is_not_a_database_url_is_one_clear_sentence():
    with pytest.raises(ConfigError) as err:
        StateDB("not a url at all")
    assert str(err.value) == "state.url: not a database URL: 'not a url at all'"


def test_a_database_that_cannot_be_opened_is_one_clear_sentence(tmp_path):
    with pytest.raises(ConfigError) as err:
        StateDB("postgresql://nobody@127.0.0.1:1/none")
    message = str(err.value)
    assert message.startswith("state.url: cannot open the state DB: ") and "\n" not in message
    assert len(message) > len("state.url: cannot open the state DB: ") + 5


def test_the_url_is_kept_and_a_file_db_is_created_with_its_folder(tmp_path):
    path = tmp_path / "deep" / "state.db"
    state = StateDB(f"sqlite:///{path}")
    try:
        assert state.url == f"sqlite:///{path}" and path.exists()
    finally:
        state.close()


def test_a_file_db_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "state.db"
    state = StateDB(f"sqlite:///{path}")
    try:
        assert path.stat().st_mode & 0o777 == 0o600
        with state.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1      # NORMAL
    finally:
        state.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_db_makes_no_file(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    StateDB(url).close()
    assert list(tmp_path.iterdir()) == []


def test_a_db_file_that_cannot_be_made_is_one_clear_sentence(tmp_path):
    (tmp_path / "plain").write_text("a file, not a folder")
    with pytest.raises(ConfigError) as err:
        StateDB(f"sqlite:///{tmp_path / 'plain' / 'state.db'}")
    # the OS's reason: the folder to make exists, as a file
    assert str(err.value) == (f"state.url: cannot create the state DB file {tmp_path / 'plain' / 'state.db'}: "
                              "File exists")


def test_stored_json_is_sorted_keeps_non_ascii_and_shows_other_values_as_text(db):
    db.start_run("r1", "plan")
    db.finish_run("r1", "ok", counts={"b": 1, "zoë": 2, "a": START})
    assert db.runs()[0].counts == '{"a": "2026-01-01 00:00:00+00:00", "b": 1, "zoë": 2}'


def test_a_new_db_logs_its_schema_upgrade(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="provisioner.state")
    StateDB(f"sqlite:///{tmp_path / 'new.db'}").close()
    assert [r.getMessage() for r in caplog.records if r.name == "provisioner.state"] == [
        f"state DB: schema new -> {SCHEMA_HEAD}"]


def test_a_db_at_an_older_revision_is_upgraded_not_restamped(tmp_path, caplog):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(state_module._MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    engine.dispose()
    caplog.set_level(logging.INFO, logger="provisioner.state")
    state = StateDB(url)
    try:
        assert state.written("ccs") == {}                    # 0004's table is there
        assert f"state DB: schema 0002 -> {SCHEMA_HEAD}" in [r.getMessage() for r in caplog.records]
    finally:
        state.close()


def test_a_plan_id_that_prefixes_another_loads_itself(db):
    db.save_plan(plan("p1"))
    db.save_plan(plan("p12"))
    assert db.load_plan("p1").plan_id == "p1"
    assert db.load_plan("p1").targets["dir"].held == 0


def test_the_newest_apply_and_the_newest_in_step_run_count(db):
    db.save_plan(plan("p1", items=[item("i1")]))
    run(db, "r1", kind="apply", plan_id="p1")
    later = run(db, "r2", kind="apply", plan_id="p1")
    assert db.last_success("dir") == later
    db.save_plan(plan("p2", items=[item("i2", target="crm")]))
    run(db, "r3", successful=True)
    newest = run(db, "r4", successful=True)
    assert db.last_success("crm") == newest


def test_item_statuses_are_set_in_their_own_plan_and_keep_the_account_when_none_is_given(db):
    db.save_plan(plan("p1", items=[item("i1"), item("i2", identity="E2")]))
    db.save_plan(plan("p2", items=[item("i1")]))
    db.set_items_status("p1", [("i1", "done", None, "acct-1"), ("i2", "failed", "boom", None)])
    db.set_items_status("p1", [("i1", "done", None, None)])
    items = {i.id: i for i in db.load_plan("p1").items}
    assert (items["i1"].status, items["i1"].account_id) == ("done", "acct-1")
    assert (items["i2"].status, items["i2"].error) == ("failed", "boom")
    assert db.load_plan("p2").items[0].status == "pending"
    from provisioner.state import PlanItemRecord
    from sqlmodel import select
    with db.session() as s:
        stamps = {(r.plan_id, r.item_id): r.updated_at for r in s.exec(select(PlanItemRecord))}
    assert stamps[("p1", "i1")] and stamps[("p1", "i2")] and stamps[("p2", "i1")] is None
