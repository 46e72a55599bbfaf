"""What a person reads: plan tables and diffs, apply progress, runs and status."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import plan_text
from .model import APPLICABLE_OPS, OPS, RUNNABLE, Plan

CHANGE_OPS = APPLICABLE_OPS

console = Console(highlight=False)
if not console.is_terminal and "COLUMNS" not in os.environ:
    # piped or logged output: rich would squeeze the tables into 80 columns
    console = Console(highlight=False, width=160)


def applicable_count(plan: Plan) -> int:
    return sum(1 for i in plan.items if i.op in APPLICABLE_OPS)


def apply_question(plan: Plan, allow_mass_change: bool) -> str | None:
    """What `apply` asks: the changes it will make, and those a blocked target keeps back;
    None when it would make none."""
    blocked = set() if allow_mass_change else {n for n, s in plan.targets.items() if s.blocked}
    runnable = [i for i in plan.items if i.op in APPLICABLE_OPS and i.status in RUNNABLE]
    held = sorted({i.target for i in runnable if i.target in blocked})
    go = sum(1 for i in runnable if i.target not in blocked)
    if not go:
        return None
    question = f"Apply {go} change{'' if go == 1 else 's'} of plan {plan.plan_id}"
    if held:
        question += (f" (the {len(runnable) - go} on blocked {', '.join(held)} are left out; "
                     "see --allow-mass-change)")
    return question + "?"


_fmt = plan_text.fmt


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "<1s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def summary_table(plan: Plan, estimates: dict[str, float] | None = None) -> Table:
    table = Table(title=f"plan {plan.plan_id}  ({plan.created_at}, {plan.status})", title_justify="left")
    table.add_column("target")
    table.add_column("accounts", justify="right")
    for op in OPS:
        table.add_column(op, justify="right")
    table.add_column("unmanaged", justify="right")
    table.add_column("held", justify="right")
    if estimates:
        table.add_column("est. apply", justify="right")
    table.add_column("blocked")
    for name, summary in plan.targets.items():
        row = [escape(name), str(summary.accounts), *(str(summary.counts.get(op, 0)) for op in OPS),
               str(summary.unmanaged), str(summary.held)]
        if estimates:
            row.append(_duration(estimates.get(name, 0.0)))
        row.append(f"[bold red]BLOCKED[/]: {escape(summary.block_reason or '')}" if summary.blocked else "no")
        table.add_row(*row)
    return table


def print_plan(plan: Plan, estimates: dict[str, float], *, apply_hint: bool = True,
               detail: str = plan_text.DEFAULT) -> None:
    """The per-target summary first; then the source's rejected rows and notes, the items
    (see plan_text for what each detail shows) and a recap; the `Plan:` line last, so that
    `apply` can ask right below it."""
    console.print(summary_table(plan, estimates))
    body = Text(f"source: {plan.identities} identities, {len(plan.rejected)} rows rejected")
    for part in (_rejected_text(plan), _source_info_text(plan.source_info), plan_text.orphans_text(plan)):
        if part.plain:
            body.append("\n")
            body.append_text(part)
    items = plan_text.items_text(plan, detail)
    if items.plain:
        body.append("\n\n")
        body.append_text(items)
    body.append("\n\n")
    body.append_text(plan_text.closing_text(plan, estimates, apply_hint=apply_hint, duration=_duration))
    # soft_wrap: long lines are left to the terminal; rich re-wrapping every line
    # cost seconds on a plan of thousands of items
    console.print(body, soft_wrap=True)


def _rejected_text(plan: Plan) -> Text:
    text = Text()
    for rejected in plan.rejected:
        text.append("  ")
        text.append("rejected", style="red")
        # the reason starts with the source's name when several are merged
        held = f"; {rejected.key} is held on every target" if rejected.key else ""
        text.append(f" row {rejected.row} ({rejected.key or 'no key'}): {rejected.reason}{held}\n")
    text.rstrip()
    return text


def _source_info_text(info: dict) -> Text:
    """Counts per source, records only a secondary source has, and the dated changes ahead."""
    text = Text()
    if len(info.get("sources", {})) > 1:
        text.append("sources: " + "; ".join(
            f"{name} " + ", ".join(f"{n} {what}" for what, n in counts.items())
            for name, counts in info["sources"].items()) + "\n")
    for other in info.get("unmatched", ()):
        text.append("  ")
        text.append("unmatched", style="yellow")
        text.append(f" record {other['row']} ({other['key'] or 'no key'}): {other['reason']}\n")
    for change in info.get("upcoming", ()):
        targets = ", ".join(change["targets"]) or "no target"
        text.append("  ")
        text.append("upcoming", style="cyan")
        text.append(f" {change['identity']} {change['change']} {change['date']} (targets: {targets})\n")
    text.rstrip()
    return text


@contextmanager
def progress(total: int) -> Iterator:
    stderr = Console(stderr=True)
    # without a terminal (cron, systemd, JSON logs) a bar only leaves blank lines among the logs
    bar = Progress(TextColumn("applying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=stderr, transient=True, disable=not stderr.is_terminal)
    with bar:
        task = bar.add_task("apply", total=total)

        def advance(item, status) -> None:
            if item.op in APPLICABLE_OPS:
                bar.advance(task)
        yield advance


def print_apply_result(plan: Plan, result, state) -> None:
    stored = state.load_plan(plan.plan_id)
    text = Text()
    for item in stored.items:
        if item.status in ("failed", "stale"):
            text.append(item.status, style="red")
            text.append(f" {item.op} {item.target} {item.identity or ''}: {item.error or ''}\n")
    for name in result.blocked_targets:
        text.append("not applied", style="bold red")
        text.append(f": target {name} is blocked ({plan.targets[name].block_reason or ''}); review, then "
                    "apply again with --allow-mass-change if it is intended\n")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
    text.append(f"plan {plan.plan_id}: {result.plan_status} ({counts})")
    # one renderable: an apply with thousands of failures prints them in one go
    console.print(text, soft_wrap=True)


def run_dict(run, ops: dict[str, int] | None = None) -> dict:
    duration = None
    if run.finished_at:
        duration = (datetime.fromisoformat(run.finished_at) - datetime.fromisoformat(run.started_at)).total_seconds()
    counts = json.loads(run.counts)
    failures = counts.get("failed", 0) + counts.get("stale", 0) if run.kind == "apply" else 0
    return {"id": run.id, "kind": run.kind, "trigger": run.trigger, "started_at": run.started_at,
            "finished_at": run.finished_at, "duration_s": duration, "status": run.status,
            "plan_id": run.plan_id, "identities": run.identities, "counts": counts,
            "ops": ops or {}, "failures": failures, "error": run.error}


def runs_report(state, limit: int) -> list[dict]:
    records = state.runs(limit)
    ops = state.plan_op_counts([r.plan_id for r in records if r.plan_id])
    return [run_dict(r, ops.get(r.plan_id)) for r in records]


def print_runs(runs: list[dict]) -> None:
    table = Table()
    for column in ("started", "kind", "trigger", "duration", "status", "ops", "counts", "failures", "plan"):
        table.add_column(column)
    for d in runs:
        counts = ", ".join(f"{k} {v}" for k, v in d["counts"].items()) or "-"
        ops = ", ".join(f"{k} {v}" for k, v in d["ops"].items()) or "-"
        table.add_row(d["started_at"][:19].replace("T", " "), d["kind"], d["trigger"],
                      _duration(d["duration_s"]) if d["duration_s"] is not None else "running",
                      d["status"] + (f": {d['error']}" if d["error"] else ""), ops, counts,
                      str(d["failures"]), d["plan_id"] or "-")
    console.print(table)


def status_report(settings, state) -> dict:
    links = state.link_counts()
    runs = state.runs(500)
    last_ok = next((r for r in runs if r.kind == "apply" and r.status == "ok"), None)
    report = {}
    for name in settings.targets:
        failure = state.last_failure(name)
        report[name] = {
            "linked_accounts": links.get(name, 0),
            "last_successful_run": state.last_success(name),
            "last_successful_apply": last_ok.finished_at if last_ok else None,
            "pending_plans": [p.id for p in state.pending_plans(name)],
            "last_error": failure.outcome if failure else None,
            "last_error_at": failure.at if failure else None,
        }
    return report


def print_status(report: dict) -> None:
    table = Table()
    for column in ("target", "linked", "last successful run", "pending plans", "last error"):
        table.add_column(column)
    for name, row in report.items():
        last = row["last_successful_run"]
        error = f"{row['last_error_at'][:19].replace('T', ' ')} {row['last_error']}" if row["last_error"] else "-"
        table.add_row(name, str(row["linked_accounts"]), last[:19].replace("T", " ") if last else "never",
                      ", ".join(row["pending_plans"]) or "-", escape(error))
    console.print(table)


def print_person(report: dict) -> None:
    console.print(f"[bold]{escape(report['key'])}[/]")
    source = report["source"]
    if source is None:
        console.print("  source: not in the source" + (" (rejected: " + "; ".join(
            escape(r["reason"]) for r in report["rejected"]) + ")" if report["rejected"] else ""))
    else:
        console.print(f"  source: row {source['row']}")
        for attr, value in source["attrs"].items():
            console.print(f"    {escape(attr)}: {escape(_fmt(value))}")
    for name, entry in report["targets"].items():
        link = entry["link"]
        if link is None:
            console.print(f"  {escape(name)}: not linked")
        else:
            data = f" data {escape(_fmt(link['data']))}" if link["data"] else ""
            console.print(f"  {escape(name)}: linked to account {escape(link['account_id'])} "
                          f"since {link['since'][:19].replace('T', ' ')}{data}")
        if entry["account_error"]:
            console.print(f"    [red]account[/]: {escape(entry['account_error'])}")
        elif entry["account"]:
            account = entry["account"]
            console.print(f"    account: {'active' if account['active'] else 'DISABLED'}")
            for path, value in account["attrs"].items():
                console.print(f"      {escape(path)}: {escape(_fmt(value))}")
        for change in entry["changes"]:
            after = ", ".join(f"{k}={_fmt(v)}" for k, v in change["after"].items())
            console.print(f"    {change['at'][:19].replace('T', ' ')} {change['op']} "
                          f"({escape(change['outcome'])}) {escape(after)}")
