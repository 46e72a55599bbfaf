"""What every report format shows the same way: values, counts, items that need a person."""

from __future__ import annotations

import json
from typing import Any

from ..model import CONFLICT, DRIFT, FAILED, MANUAL, STALE, Plan, PlanItem

# items a person must act on: the tool cannot (manual), could not decide
# (conflict), was told to only report (drift), or tried and did not succeed (failed, stale)
PERSON_OPS = (MANUAL, CONFLICT, DRIFT)
PROBLEM_STATUSES = (FAILED, STALE)


def value_text(value: Any) -> str:
    """A plan value as a person reads it: strings as they are, absent as ∅, others as JSON."""
    if value is None:
        return "∅"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def needs_person(item: PlanItem) -> bool:
    return item.op in PERSON_OPS or item.status in PROBLEM_STATUSES


def attention_items(plan: Plan) -> list[PlanItem]:
    return [i for i in plan.items if needs_person(i)]


def blocked_targets(plan: Plan) -> dict[str, str]:
    return {name: s.block_reason or "blocked" for name, s in plan.targets.items() if s.blocked}


def orphan_rows(plan: Plan) -> list[list]:
    """policy.unmanaged = "report" or "disable": [target, account, person, state, kept by] per orphan."""
    return [[name, o["account_id"], o.get("person") or "", "active" if o.get("active", True) else "disabled",
             o.get("kept") or ""]
            for name, s in plan.targets.items() for o in (s.orphans or ())]


ORPHAN_HEADER = ["target", "account", "person", "state", "kept by"]
