"""The plan as CSV: one row per item and attribute, for a spreadsheet review."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable

from ..model import Plan
from .common import value_text

PLAN_COLUMNS = ("plan_id", "target", "op", "identity", "account", "attribute", "from", "to",
                "why", "status", "error")
# A cell starting with one of these is a formula to Excel and LibreOffice: a hostile
# source value such as =HYPERLINK(...) must stay text (OWASP's CSV injection advice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_rows(columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def plan_csv(plan: Plan) -> str:
    def rows():
        for item in plan.items:
            head = (plan.plan_id, item.target, item.op, item.identity, item.account_id)
            tail = (item.reason, item.status, item.error)
            if not item.changes:  # manual and conflict items: one row without an attribute
                yield (*head, None, None, None, *tail)
            for path, change in item.changes.items():
                yield (*head, path, _plain(change.before), _plain(change.after), *tail)
    return write_rows(PLAN_COLUMNS, rows())


def _plain(value: Any) -> str | None:
    """Absent stays an empty cell (not ∅) so a spreadsheet filter on blanks works."""
    return None if value is None else value_text(value)
