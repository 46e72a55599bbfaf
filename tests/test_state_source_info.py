"""The plan's source_info column: counts per source and upcoming changes, stored with the plan."""

from __future__ import annotations

from provisioner.model import Plan, Rejected
from provisioner.state import StateDB

INFO = {"sources": {"hr": {"identities": 2, "rejected": 1, "held": 1}},
        "upcoming": [{"identity": "E9", "change": "starts", "date": "2026-04-01", "targets": ["dir"]}]}


def test_source_info_is_stored_with_the_plan(tmp_path):
    path = tmp_path / "state.db"
    state = StateDB(f"sqlite:///{path}")
    plan = Plan(plan_id="new1", created_at="2026-03-10", status="pending", identities=2,
                rejected=(Rejected(4, "E4", "hr: invalid hire_date 'x' (expected YYYY-MM-DD)"),),
                targets={}, items=(), source_info=INFO)
    state.save_plan(plan)
    again = StateDB(f"sqlite:///{path}")
    assert again.load_plan("new1").to_dict()["source"] == {
        "identities": 2, "rejected": [{"row": 4, "key": "E4", "reason": "hr: invalid hire_date 'x' (expected YYYY-MM-DD)"}],
        **INFO}
    state.close()
    again.close()
