"""The plan as Markdown for a ticket or change request: the summary and what needs a person."""

from __future__ import annotations

import re

from ..model import OPS, Plan
from .common import ORPHAN_HEADER, attention_items, blocked_targets, orphan_rows

# a ticket has a size limit; the full list is in the HTML or CSV report
MAX_ROWS = 100
_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md(value) -> str:
    """Text safe inside a Markdown table cell: no pipes, no line breaks, no markup, no HTML."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = " ".join(text.split())
    return _SPECIAL.sub(r"\\\1", text)


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(md(h) for h in header) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(md(v) if v not in (None, "") else " " for v in row) + " |" for row in rows]
    return lines


def _capped(rows: list[list], what: str) -> tuple[list[list], list[str]]:
    if len(rows) <= MAX_ROWS:
        return rows, []
    return rows[:MAX_ROWS], ["", f"… and {len(rows) - MAX_ROWS} more {what} (see the HTML or CSV report)"]


def plan_markdown(plan: Plan) -> str:
    out = [f"## Plan {md(plan.plan_id)}", "",
           f"Created {md(plan.created_at)}, status **{md(plan.status)}**; source: {plan.identities} "
           f"identities, {len(plan.rejected)} rows rejected.", ""]
    out += table(["target", "accounts", *OPS, "unmanaged", "blocked"],
                 [[name, s.accounts, *(s.counts.get(op, 0) for op in OPS), s.unmanaged,
                   f"BLOCKED: {s.block_reason}" if s.blocked else "no"]
                  for name, s in plan.targets.items()])
    blocked = blocked_targets(plan)
    if blocked:
        out += ["", "### Blocked by the safety policy", ""]
        out += [f"- **{md(name)}**: {md(reason)}" for name, reason in blocked.items()]
    if plan.rejected:
        rows, more = _capped([[r.row, r.key, r.reason] for r in plan.rejected], "rejected rows")
        out += ["", "### Source rows rejected", ""] + table(["row", "key", "reason"], rows) + more
    unmatched = plan.source_info.get("unmatched", ())
    if unmatched:
        rows, more = _capped([[u["row"], u["key"], u["reason"]] for u in unmatched], "records")
        out += ["", "### Records only a secondary source has", ""] + table(["row", "key", "reason"], rows) + more
    orphans = orphan_rows(plan)
    if orphans:
        rows, more = _capped(orphans, "orphan accounts")
        out += ["", "### Accounts that match nobody (orphans)", ""] + table(ORPHAN_HEADER, rows) + more
    attention = attention_items(plan)
    if attention:
        rows, more = _capped([[i.target, i.op, i.identity, i.account_id, i.status, i.error or i.reason]
                              for i in attention], "items")
        out += ["", "### Items that need a person", ""]
        out += table(["target", "op", "identity", "account", "status", "why"], rows) + more
    out.append("")
    return "\n".join(out)
