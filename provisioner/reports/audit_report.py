"""The provisioning log as an IdP admin expects it: every change sent, before → after,
which run and plan, and the outcome; CSV (one row per attribute) or JSON (one object per change)."""

from __future__ import annotations

import json

from .csv_report import write_rows
from .common import value_text

AUDIT_COLUMNS = ("at", "run_id", "plan_id", "item_id", "target", "op", "identity", "account",
                 "attribute", "before", "after", "outcome")


def audit_dicts(rows) -> list[dict]:
    return [{"at": r.at, "run_id": r.run_id, "plan_id": r.plan_id, "item_id": r.item_id,
             "target": r.target, "op": r.op, "identity": r.identity, "account": r.account_id,
             "before": json.loads(r.before), "after": json.loads(r.after), "outcome": r.outcome}
            for r in rows]


def audit_json(rows) -> str:
    return json.dumps(audit_dicts(rows), indent=2, ensure_ascii=False) + "\n"


def audit_csv(rows) -> str:
    def lines():
        for change in audit_dicts(rows):
            head = [change[k] for k in AUDIT_COLUMNS[:8]]
            attributes = list(dict.fromkeys([*change["before"], *change["after"]]))
            if not attributes:  # e.g. a failure before anything was sent
                yield (*head, None, None, None, change["outcome"])
            for name in attributes:
                yield (*head, name, _cell(change["before"], name), _cell(change["after"], name),
                       change["outcome"])
    return write_rows(AUDIT_COLUMNS, lines())


def _cell(values: dict, name: str) -> str | None:
    return value_text(values[name]) if values.get(name) is not None else None


AUDIT_REPORTS = {"csv": audit_csv, "json": audit_json}
