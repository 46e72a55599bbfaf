"""What the plan text lists in each detail, item by item (the CLI around it: test_plan_review_cli)."""

from __future__ import annotations

from provisioner.model import Change, Plan, PlanItem, TargetSummary
from provisioner.plan_text import COMPACT, DEFAULT, FULL, closing_text, items_text, plan_line


def item(n, op, target="dir", **kw):
    changes = {"active": Change(True, False)} if op == "disable" else {
        "title": Change("Agent", "Lead"), "name.familyName": Change("A", "B")} if op == "update" else {}
    reason = {"create": f"E{n} is in the source and has no account",
              "update": "attributes differ: title, name.familyName"}.get(op, f"why {n}")
    return PlanItem(id=str(n), target=target, op=op, identity=f"E{n}", account_id=None if op == "create" else f"a{n}",
                    changes=kw.pop("changes", changes), reason=kw.pop("reason", reason), **kw)


def plan_of(items, **targets):
    counts = {}
    for i in items:
        counts.setdefault(i.target, {}).setdefault(i.op, 0)
        counts[i.target][i.op] += 1
    summaries = {n: TargetSummary(accounts=10, counts=c, unmanaged=0) for n, c in counts.items()}
    summaries.update(targets)
    return Plan("p1", "t", "pending", identities=len(items), rejected=(), targets=summaries, items=tuple(items))


def test_routine_updates_past_the_threshold_are_counted_not_listed_and_failures_always_listed():
    updates = [item(n, "update") for n in range(25)]
    failed = item(99, "create", status="failed", error="HTTP 409", changes={"userName": Change(None, "x")})
    plan = plan_of([*updates, *(item(100 + n, "create") for n in range(21)), failed, item(7, "conflict")])
    lines = items_text(plan, DEFAULT).plain.splitlines()
    assert lines[0] == "dir: 22 to create, 25 to update, 1 conflict"
    assert lines[1].startswith("? conflict dir  E7") and lines[2] == "      why: why 7"
    assert sum(l.startswith("~ update") for l in lines) == 20
    assert lines[3:5] == ["~ update   dir  E0 account a0", '      title: "Agent" → "Lead"']
    assert "… and 5 more updates on dir: provisioner show p1 --target dir --full" in lines
    # 21 routine creates and the failed one: that one is listed whatever the count
    assert sum(l.startswith("+ create") for l in lines) == 21
    assert "+ create   dir  E99  [failed]" in lines and "      error: HTTP 409" in lines
    assert "… and 1 more create on dir: provisioner show p1 --target dir --full" in lines
    assert len(items_text(plan, FULL).plain.splitlines()) > len(lines)


def test_compact_is_one_line_per_item_with_the_reason_when_it_says_more():
    plan = plan_of([item(1, "create"), item(2, "disable"), item(3, "update")])
    assert items_text(plan, COMPACT).plain.splitlines() == [
        "dir: 1 to create, 1 to update, 1 to disable",
        "- disable  dir  E2 account a2  why 2",
        "~ update   dir  E3 account a3",
        "+ create   dir  E1"]


def test_the_plan_line_counts_the_whole_plan_and_blocked_targets():
    blocked = TargetSummary(accounts=3, counts={}, unmanaged=0, blocked=True, block_reason="too many")
    plan = plan_of([item(1, "create"), item(2, "conflict"), item(3, "conflict"), item(4, "manual", "crm")],
                   crm=blocked)
    assert plan_line(plan) == ("Plan: 0 to delete, 1 to create, 0 to update, 0 to disable, 0 to enable; "
                               "1 manual, 0 drift, 2 conflicts, 1 blocked.")
    closing = closing_text(plan, {}, apply_hint=True, duration=str).plain.splitlines()
    assert closing == ["dir  1 to create, 2 conflicts", "crm  1 manual  BLOCKED: too many",
                       "blocked by the safety policy: crm; review the items above. An apply leaves it out "
                       "unless given --allow-mass-change", plan_line(plan)]
