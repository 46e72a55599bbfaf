"""What the state DB records for the lifecycle (migration 0005), on SQLite and PostgreSQL:
when this tool disabled a linked account, deletes forgetting the link, a plan's as-of day."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from provisioner.state import StateDB
from test_state_db import make_plan

MIGRATIONS = Path(__file__).resolve().parent.parent / "provisioner" / "migrations"


def test_a_db_at_0004_is_upgraded_keeping_its_links(db_url):
    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        conn.execute(text("INSERT INTO links (target, identity, account_id, data, created_at, updated_at) "
                          "VALUES ('dir', 'E1', 'a1', '{}', 't', 't')"))
    engine.dispose()
    db = StateDB(db_url)
    try:
        assert db.links("dir") == {"E1": "a1"} and db.disabled_at("dir") == {}
        with db.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("links")}
            assert "disabled_at" in columns
            assert "as_of" in {c["name"] for c in inspect(conn).get_columns("plans")}
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0005"
    finally:
        db.close()


def test_disabled_at_is_recorded_cleared_and_a_delete_forgets_the_account(db_url):
    db = StateDB(db_url)
    try:
        db.save_link("dir", "E1", "a1")
        db.save_link("dir", "E2", "a2")
        db.save_written("dir", "a1", {"title": "Agent"}, identity="E1")
        db.mark_disabled("dir", [("E1", "a1", "2026-03-01T02:00:00.000+00:00"),
                                 ("E2", "other", "2026-03-01T02:00:00.000+00:00")])  # not E2's account
        assert db.disabled_at("dir") == {"a1": "2026-03-01T02:00:00.000+00:00"}
        db.save_link("dir", "E1", "a1", {"x": 1})   # a later link write keeps it
        assert db.disabled_at("dir") == {"a1": "2026-03-01T02:00:00.000+00:00"}
        db.mark_disabled("dir", [("E1", "a1", None)])   # enabled again
        assert db.disabled_at("dir") == {}
        db.forget_account("dir", "a1")
        assert db.links("dir") == {"E2": "a2"} and db.written("dir") == {}
    finally:
        db.close()


def test_a_link_moved_to_another_account_forgets_the_disable_of_the_first(db_url):
    # this tool disabled a1; the account a person is linked to next is not one this tool disabled
    db = StateDB(db_url)
    try:
        for save in (lambda i, a: db.save_link("dir", i, a), lambda i, a: db.save_links("dir", [(i, a, None)])):
            save("E1", "a1")
            db.mark_disabled("dir", [("E1", "a1", "2026-03-01T02:00:00.000+00:00")])
            save("E1", "a1")
            assert db.disabled_at("dir") == {"a1": "2026-03-01T02:00:00.000+00:00"}
            save("E1", "b1")
            assert db.links("dir") == {"E1": "b1"} and db.disabled_at("dir") == {}
            db.forget_account("dir", "b1")
    finally:
        db.close()


def test_a_plan_keeps_its_as_of_day_and_is_never_latest(db_url):
    db = StateDB(db_url)
    try:
        db.save_plan(make_plan("today", "2026-01-01T00:00:00.000+00:00"))
        db.save_plan(replace(make_plan("ahead", "2026-01-02T00:00:00.000+00:00"), as_of="2026-02-01"))
        assert db.load_plan("ahead").as_of == "2026-02-01" and db.load_plan("today").as_of is None
        assert db.load_plan("ahead").to_dict()["as_of"] == "2026-02-01"
        assert db.latest_plan_id() == "today"
        assert [p.id for p in db.pending_plans()] == ["today"]   # a look ahead waits for nobody
    finally:
        db.close()
