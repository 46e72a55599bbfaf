"""A plan as a person reviews it in the terminal: what needs their eyes in full,
routine creates and updates only up to a threshold per target, and one closing
`Plan:` line with the counts over the whole plan.

Everything here builds rich Text (one renderable per section): rich costs about a
millisecond per print call, which made a plan of thousands of items slow to show.
"""

from __future__ import annotations

import json

from rich.text import Text

from .model import (APPLICABLE_OPS, CONFLICT, CREATE, DELETE, DISABLE, DRIFT, ENABLE, MANUAL, RUNNABLE,
                    UNREADABLE, UPDATE, Plan, PlanItem)

DEFAULT, FULL, COMPACT = "default", "full", "compact"
# Routine creates and updates listed per target and operation in the default detail;
# past it one line says how many more there are and the command that lists them.
ROUTINE_SHOWN = 20

MARK = {DELETE: ("x", "bold red"), CREATE: ("+", "green"), UPDATE: ("~", "yellow"), DISABLE: ("-", "red"),
        ENABLE: ("^", "cyan"), MANUAL: ("!", "magenta"), DRIFT: ("≠", "magenta"), CONFLICT: ("?", "bold red")}
# within a target, deletes (never undone) come first, then what needs a person; creates,
# the bulk of a first run, last
_ORDER = {DELETE: -1, CONFLICT: 0, MANUAL: 1, DRIFT: 2, DISABLE: 3, ENABLE: 4, UPDATE: 5, CREATE: 6}
_WORDS = ((DELETE, "to delete"), (CREATE, "to create"), (UPDATE, "to update"), (DISABLE, "to disable"),
          (ENABLE, "to enable"))


def fmt(value) -> str:
    if value is None:
        return "∅"
    return json.dumps(value, ensure_ascii=False)


def op_counts(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.op] = counts.get(item.op, 0) + 1
    return counts


def plan_line(plan: Plan) -> str:
    """The closing line, Terraform-style; a script may grep it, so its shape does not vary."""
    counts = op_counts(plan.items)
    conflicts = counts.get(CONFLICT, 0)
    blocked = sum(1 for s in plan.targets.values() if s.blocked)
    return ("Plan: " + ", ".join(f"{counts.get(op, 0)} {words}" for op, words in _WORDS)
            + f"; {counts.get(MANUAL, 0)} manual, {counts.get(DRIFT, 0)} drift, "
            f"{conflicts} conflict{'' if conflicts == 1 else 's'}, {blocked} blocked.")


def target_words(counts: dict[str, int]) -> str:
    parts = [f"{counts[op]} {words}" for op, words in _WORDS if counts.get(op)]
    if counts.get(MANUAL):
        parts.append(f"{counts[MANUAL]} manual")
    if counts.get(DRIFT):
        parts.append(f"{counts[DRIFT]} drift")
    if counts.get(CONFLICT):
        parts.append(f"{counts[CONFLICT]} conflict{'' if counts[CONFLICT] == 1 else 's'}")
    return ", ".join(parts) or "no changes"


def _routine(item: PlanItem) -> bool:
    """A create or update a person need not read one by one (one that failed, they must)."""
    return item.op in (CREATE, UPDATE) and not item.error


def _plain_reason(item: PlanItem) -> bool:
    """The reason says nothing the item's line and changes do not (the planner's wording)."""
    if item.op == CREATE:
        return item.reason == f"{item.identity} is in the source and has no account"
    if item.op == UPDATE:
        return item.reason.startswith("attributes differ: ")
    return False


def _by_target(plan: Plan) -> dict[str, list[PlanItem]]:
    groups: dict[str, list[PlanItem]] = {name: [] for name in plan.targets}
    for item in plan.items:
        groups.setdefault(item.target, []).append(item)
    for items in groups.values():
        items.sort(key=lambda i: _ORDER[i.op])  # stable: the plan's order within an operation
    return groups


def items_text(plan: Plan, detail: str = DEFAULT, shown: int = ROUTINE_SHOWN) -> Text:
    """Every target's items under a heading; plain lines with styled marks (no markup to escape)."""
    text = Text()
    append = text.append
    for name, items in _by_target(plan).items():
        if not items:
            continue
        append(f"{name}: {target_words(op_counts(items))}\n", style="bold")
        listed = {CREATE: 0, UPDATE: 0}
        for item in items:
            if detail == DEFAULT and _routine(item):
                listed[item.op] += 1
                if listed[item.op] > shown:
                    continue
            _item(append, item, detail)
        for op, count in listed.items():
            if detail == DEFAULT and count > shown:
                more = count - shown
                append(f"… and {more} more {op}{'' if more == 1 else 's'} on {name}: "
                       f"provisioner show {plan.plan_id} --target {name} --full\n", style="dim")
    text.rstrip()
    return text


def _item(append, item: PlanItem, detail: str) -> None:
    mark, colour = MARK[item.op]
    account = f" account {item.account_id}" if item.account_id else ""
    person = f" ({item.person})" if item.person and item.person != item.identity else ""
    status = "" if item.status == "pending" else f"  [{item.status}]"
    append(f"{mark} {item.op:<8}", style=colour)
    append(f" {item.target}  {item.identity or ''}{person}{account}{status}")
    if detail == COMPACT:
        append("\n" if _plain_reason(item) else f"  {item.reason}\n")
        return
    append("\n")
    if detail == FULL or not _plain_reason(item):
        append(f"      why: {item.reason}\n")
    if item.op == CREATE and detail == DEFAULT and item.changes:
        # one line: the values it is created with, in the mapping's order
        append("      " + ", ".join(f"{path}: {fmt(c.after)}" for path, c in item.changes.items()) + "\n")
    elif item.op == CREATE and detail == FULL and item.attrs:
        for path, value in item.attrs.items():
            append(f"      {path}: {fmt(value)}\n")
    elif item.op == DRIFT:
        for path, change in item.changes.items():
            append(f"      {path}: ours {fmt(change.before)}, theirs {fmt(change.after)}\n")
    else:
        for path, change in item.changes.items():
            append(f"      {path}: {fmt(change.before)} → {fmt(change.after)}\n")
    if item.error:
        append("      ")
        append("error", style="red")
        append(f": {item.error}\n")


def closing_text(plan: Plan, estimates: dict[str, float], *, apply_hint: bool, duration) -> Text:
    """The per-target recap, what to do next, and the `Plan:` line, which comes last."""
    text = Text()
    groups = _by_target(plan)
    blocked = [n for n, s in plan.targets.items() if s.blocked]
    unreadable = [n for n in blocked if (plan.targets[n].block_reason or "").startswith(UNREADABLE)]
    if len(plan.targets) > 1 or blocked:
        width = max(len(n) for n in plan.targets)
        for name, summary in plan.targets.items():
            text.append(f"{name:<{width}}  ")
            if name in unreadable:
                text.append("NOT PLANNED", style="bold red")
                text.append(f": {summary.block_reason}\n")
                continue
            text.append(target_words(op_counts(groups.get(name, ()))))
            if estimates.get(name):
                text.append(f" (est. {duration(estimates[name])})")
            if summary.blocked:
                text.append("  ")
                text.append("BLOCKED", style="bold red")
                text.append(f": {summary.block_reason}")
            text.append("\n")
    applicable = [i for i in plan.items if i.op in APPLICABLE_OPS]
    waiting = sum(1 for i in plan.items if i.op in (MANUAL, CONFLICT, DRIFT))
    if unreadable:
        text.append(f"not a complete plan: the accounts of {', '.join(unreadable)} could not be read, so "
                    "nothing was planned for "
                    f"{'it' if len(unreadable) == 1 else 'them'}; plan again once "
                    f"{'it answers' if len(unreadable) == 1 else 'they answer'}\n", style="red")
    others = [n for n in blocked if n not in unreadable]
    if others:
        text.append(f"blocked by the safety policy: {', '.join(others)}; review the items above. "
                    f"An apply leaves {'it' if len(others) == 1 else 'them'} out unless given "
                    "--allow-mass-change\n", style="red")
    if not blocked:
        if not applicable:
            text.append(f"nothing to apply; {waiting} item(s) above need a person\n" if waiting
                        else "nothing to apply: the targets match the source\n")
        elif not any(i.status in RUNNABLE for i in applicable):
            text.append("nothing left to apply: every change of this plan has been tried "
                        "(see provisioner runs)\n")
        elif apply_hint:
            text.append(f"apply with: provisioner apply {plan.plan_id}\n")
    if plan.as_of:
        text.append(f"as of {plan.as_of}: apply refuses this plan before that day\n", style="cyan")
    text.append(plan_line(plan), style="bold")
    return text


def orphans_text(plan: Plan) -> Text:
    """policy.unmanaged = "report" or "disable": each account that matches nobody."""
    text = Text()
    for name, summary in plan.targets.items():
        for orphan in summary.orphans or ():
            text.append("  ")
            text.append("orphan", style="yellow")
            person = f" ({orphan['person']})" if orphan.get("person") else ""
            state = "" if orphan.get("active", True) else ", disabled"
            kept = f", kept: {orphan['kept']}" if orphan.get("kept") else ""
            text.append(f" {name}  account {orphan['account_id']}{person}{state}{kept}\n")
    text.rstrip()
    return text
