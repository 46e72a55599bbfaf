"""The plan's source_info column: stored with the plan, and added to a state DB made before it existed."""

from __future__ import annotations

import sqlite3

from provisioner.model import Plan, Rejected
from provisioner.state import StateDB

INFO = {"sources": {"hr": {"identities": 2, "rejected": 1, "held": 1}},
        "upcoming": [{"identity": "E9", "change": "starts", "date": "2026-04-01", "targets": ["dir"]}]}


def test_an_older_state_db_gains_the_column_and_keeps_its_plans(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the plans table as the first release created it
        db.execute("CREATE TABLE plans (id VARCHAR PRIMARY KEY, created_at VARCHAR NOT NULL, "
                   "status VARCHAR NOT NULL, identities INTEGER NOT NULL, rejected TEXT NOT NULL, "
                   "targets TEXT NOT NULL, adopt TEXT NOT NULL)")
        db.execute("INSERT INTO plans VALUES ('old1', '2026-01-01', 'applied', 3, '[]', '{}', '[]')")
    state = StateDB(f"sqlite:///{path}")
    assert state.load_plan("old1").source_info == {}
    plan = Plan(plan_id="new1", created_at="2026-03-10", status="pending", identities=2,
                rejected=(Rejected(4, "E4", "hr: invalid hire_date 'x' (expected YYYY-MM-DD)"),),
                targets={}, items=(), source_info=INFO)
    state.save_plan(plan)
    again = StateDB(f"sqlite:///{path}")  # opening twice adds nothing twice
    assert again.load_plan("new1").to_dict()["source"] == {
        "identities": 2, "rejected": [{"row": 4, "key": "E4", "reason": "hr: invalid hire_date 'x' (expected YYYY-MM-DD)"}],
        **INFO}
    state.close()
    again.close()
