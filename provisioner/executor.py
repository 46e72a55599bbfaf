"""Apply a stored plan, item by item, so that a killed apply can resume.

Each item goes pending -> in_flight -> done | failed | stale, recorded in the
state DB before and after the target is asked. The main thread does all DB
writes, a batch per commit; worker threads only talk to the target.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Mapping

from .errors import AlreadyExists, NotFound, ProvisionerError
from .model import (
    ACTIVE, APPLICABLE_OPS, CREATE, DELETE, DISABLE, DONE, ENABLE, FAILED, IN_FLIGHT, PENDING, RUNNABLE,
    SKIPPED, STALE, Account, Plan, PlanItem, same_value, with_written,
)
from .secrets import redact
from .clock import utcnow
from .state import StateDB

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: str
    error: str | None = None
    account_id: str | None = None
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    note: str = ""
    link_data: dict | None = None   # what the target wants remembered with the link


@dataclass
class ApplyResult:
    counts: dict[str, int] = field(default_factory=dict)
    blocked_targets: list[str] = field(default_factory=list)
    stopped: bool = False   # asked to stop: the items not started are still pending
    run_id: str | None = None

    @property
    def failed(self) -> int:
        return self.counts.get(FAILED, 0)

    @property
    def stale(self) -> int:
        return self.counts.get(STALE, 0)

    @property
    def plan_status(self) -> str:
        if self.failed or self.stopped:
            return "partial"
        if self.stale:
            return "stale"
        if self.blocked_targets:
            return "partial" if self.counts.get(DONE) else "blocked"
        return "applied"


def apply_plan(plan: Plan, targets: Mapping[str, Any], state: StateDB, *, run_id: str,
               allow_mass_change: bool = False,
               on_item: Callable[[PlanItem, str], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> ApplyResult:
    """Apply every runnable item of `plan`; return the counts by final status.

    `targets` maps a target name to its open TargetHandle (target, mapping, concurrency).
    Once `should_stop()` is true no further item starts; those running finish and
    are recorded, the rest stay pending for the next apply of the plan.
    """
    result = ApplyResult(run_id=run_id)
    stop = should_stop or (lambda: False)
    blocked = {name for name, s in plan.targets.items() if s.blocked}
    with state.transaction():
        for link in plan.adopt:
            if link.target in targets and (link.target not in blocked or allow_mass_change):
                state.save_link(link.target, link.identity, link.account_id)
    by_target: dict[str, list[PlanItem]] = {name: [] for name in plan.targets}
    for item in plan.items:
        by_target.setdefault(item.target, []).append(item)
    for name, summary in plan.targets.items():
        items = by_target[name]
        if summary.blocked and not allow_mass_change:
            result.blocked_targets.append(name)
            with state.transaction():
                for item in items:
                    if item.status in RUNNABLE and item.op in APPLICABLE_OPS:
                        state.set_item_status(plan.plan_id, item.id, SKIPPED,
                                              f"not applied: target blocked ({summary.block_reason})")
                    _count(result, SKIPPED if item.status in RUNNABLE else item.status, item, on_item)
            continue
        handle = targets.get(name)
        if handle is None and any(i.op in APPLICABLE_OPS and i.status in RUNNABLE for i in items):
            raise ProvisionerError(f"plan {plan.plan_id} has items for target '{name}', "
                                   "which is not in the configuration any more")
        _apply_target(plan, name, handle, items, state, run_id, result, on_item, stop)
    return result


# Group commit: items are marked in flight a batch at a time and their outcomes
# recorded together, so an apply pays a commit per batch, not 3-4 per item.
_BATCH_PER_WORKER = 4
_FLUSH_ITEMS = 64
_FLUSH_SECONDS = 0.25


def _apply_target(plan, name, handle, items, state, run_id, result, on_item, stop) -> None:
    todo = []
    with state.transaction():
        for item in items:
            if item.op not in APPLICABLE_OPS:
                if item.status == PENDING:
                    state.set_item_status(plan.plan_id, item.id, SKIPPED)  # manual/conflict: a person acts
                _count(result, SKIPPED, item, on_item)
            elif item.status in RUNNABLE:
                todo.append(item)
            else:
                _count(result, item.status, item, on_item)
    if not todo:
        return
    # the target cannot show these: the stale check compares with what was last written
    write_only = frozenset(handle.target.write_only)
    written = state.written(name) if write_only else {}
    # what this tool writes is remembered for these: write-only paths, and those whose drift
    # the mapping adopts or alerts on (provisioner.lifecycle compares with it)
    remember = write_only | handle.mapping.drift_tracked
    workers = max(1, handle.concurrency)
    # items queued beyond the threads keep them busy while the main thread records a batch
    depth = workers * 2
    queue = iter(todo)
    reserved: list[PlanItem] = []          # marked in flight, not yet handed to a worker
    finished: list[tuple[PlanItem, Outcome]] = []
    first_finished_at = 0.0

    def flush() -> None:
        with state.transaction():
            _record(plan, name, finished, state, run_id, remember)
        for item, outcome in finished:
            _count(result, outcome.status, item, on_item)
        finished.clear()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"apply-{name}") as pool:
        running: dict[Future, PlanItem] = {}
        while True:
            while len(running) < depth:
                if stop():
                    result.stopped = True
                    break
                if not reserved:
                    reserved = list(islice(queue, workers * _BATCH_PER_WORKER))
                    if not reserved:
                        break
                    # recorded before the target hears of any of them: a kill
                    # now leaves a trace to resume from
                    with state.transaction(durable=True):
                        state.set_items_status(plan.plan_id, [(i.id, IN_FLIGHT, None, None) for i in reserved])
                item = reserved.pop(0)
                remembered = written.get(item.account_id) if write_only else None
                running[pool.submit(_run_item, handle, item, item.status == IN_FLIGHT, write_only,
                                    remembered)] = item
            if result.stopped:
                # queued but not started: put back with the reserved ones
                for future in [f for f in running if f.cancel()]:
                    reserved.insert(0, running.pop(future))
            if not running:
                break
            timeout = max(0.0, first_finished_at + _FLUSH_SECONDS - time.monotonic()) if finished else None
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                if not finished:
                    first_finished_at = time.monotonic()
                finished.append((running.pop(future), future.result()))
            if finished and (len(finished) >= _FLUSH_ITEMS or not running
                             or time.monotonic() - first_finished_at >= _FLUSH_SECONDS):
                flush()
        if finished:
            flush()
    if reserved:
        # asked to stop: what was marked but never sent goes back as it was
        with state.transaction():
            state.set_items_status(plan.plan_id, [(i.id, i.status, i.error, None) for i in reserved])


def _record(plan: Plan, target: str, finished: list[tuple[PlanItem, Outcome]], state: StateDB,
            run_id: str, remember: frozenset[str] = frozenset()) -> None:
    """Record a batch of outcomes of one target's items: links, when this tool disabled an
    account, deleted accounts forgotten, written values of the `remember` paths, statuses,
    audit rows."""
    links: dict[str, tuple[str, str, dict | None]] = {}
    disabled: list[tuple[str, str, str | None]] = []   # (identity, account, when this tool disabled it)
    deleted: list[str] = []
    statuses, audits = [], []
    for item, outcome in finished:
        account_id = outcome.account_id or item.account_id
        if outcome.status == DONE and item.op == DELETE:
            deleted.append(account_id)
        elif outcome.status == DONE and item.identity and account_id and \
                not _replaced(item, account_id, state, links):
            links[item.identity] = (item.identity, account_id, outcome.link_data)
            if item.op in (DISABLE, ENABLE):
                # the grace period before a delete counts from this tool's disable
                disabled.append((item.identity, account_id, utcnow() if item.op == DISABLE else None))
        if outcome.status == DONE and account_id and remember and item.op != DELETE:
            state.save_written(item.target, account_id, _written_by(item, remember),
                               identity=item.identity, plan_id=plan.plan_id)
        statuses.append((item.id, outcome.status, outcome.error, account_id))
        if outcome.status == DONE and outcome.after:
            audits.append(dict(run_id=run_id, plan_id=plan.plan_id, item=item, account_id=account_id,
                               before=outcome.before, after=outcome.after, outcome=outcome.note or DONE))
        elif outcome.status == FAILED:
            audits.append(dict(run_id=run_id, plan_id=plan.plan_id, item=item, account_id=account_id,
                               before=outcome.before, after=outcome.after, outcome=f"failed: {outcome.error}"))
        log.info("apply run=%s plan=%s target=%s op=%s identity=%s account=%s status=%s%s",
                 run_id, plan.plan_id, item.target, item.op, item.identity, account_id, outcome.status,
                 f" error={outcome.error}" if outcome.error else "",
                 extra={"run_id": run_id, "plan_id": plan.plan_id, "target": item.target, "op": item.op,
                        "identity": item.identity, "account_id": account_id, "status": outcome.status})
    state.save_links(target, list(links.values()))
    state.mark_disabled(target, disabled)
    for account_id in deleted:
        state.forget_account(target, account_id)
    state.set_items_status(plan.plan_id, statuses)
    state.audit_many(audits)


def _written_by(item: PlanItem, remember: frozenset[str]) -> dict[str, Any]:
    """The remembered values the account holds once the item is done: everything it planned
    (a value already in place was skipped, not left different)."""
    planned = item.attrs if item.op == CREATE else {p: c.after for p, c in item.changes.items()}
    return {p: v for p, v in planned.items() if p in remember}


def _replaced(item: PlanItem, account_id: str, state: StateDB,
              batch: Mapping[str, tuple[str, str, dict | None]]) -> bool:
    """A disable of an old account must not take the link from the new one that replaced it
    (rename = "recreate": both items are in one plan and may finish in either order, even
    in one batch, whose links are not written yet)."""
    if item.op != DISABLE:
        return False
    if item.identity in batch:
        return batch[item.identity][1] != account_id
    link = state.link(item.target, item.identity)
    return link is not None and link.account_id != account_id


def _count(result: ApplyResult, status: str, item: PlanItem, on_item) -> None:
    result.counts[status] = result.counts.get(status, 0) + 1
    if on_item:
        on_item(item, status)


def _run_item(handle, item: PlanItem, resuming: bool, write_only: frozenset[str] = frozenset(),
              remembered: Mapping[str, Any] | None = None) -> Outcome:
    try:
        if item.op == CREATE:
            return _create(handle.target, item, resuming)
        if item.op == DELETE:
            return _delete(handle.target, item)
        return _modify(handle.target, item, handle.mapping.case_insensitive, write_only, remembered)
    except ProvisionerError as exc:
        return Outcome(FAILED, str(exc))
    except Exception as exc:  # a bug or an unexpected answer must fail one item, not the apply
        log.exception("unexpected error applying item %s", item.id)
        return Outcome(FAILED, redact(f"unexpected error: {type(exc).__name__}: {exc}"))


def _create(target, item: PlanItem, resuming: bool) -> Outcome:
    after = {k: v for k, v in item.attrs.items() if v is not None}
    if resuming:
        # the last apply was killed after asking: the account may exist already
        existing = _lookup(target, item)
        if existing is not None:
            return Outcome(DONE, account_id=existing.id, after=after, note="found on resume; linked",
                           link_data=target.link_data(existing))
    try:
        account = target.create(item.attrs)
    except AlreadyExists as exc:
        existing = _lookup(target, item)
        if existing is None:
            return Outcome(FAILED, str(exc))
        return Outcome(DONE, account_id=existing.id, after=after, note="already existed; linked",
                       link_data=target.link_data(existing))
    return Outcome(DONE, account_id=account.id, after=after, link_data=target.link_data(account))


def _delete(target, item: PlanItem) -> Outcome:
    """Delete an account the plan found disabled; gone already (a resumed apply, or a person
    was quicker) is done too. One enabled since the plan is left alone."""
    account = target.get_account(item.account_id)
    if account is None:
        return Outcome(DONE, account_id=item.account_id, note="gone already")
    if account.active:
        return Outcome(STALE, f"account {item.account_id} is enabled again on {item.target}, the plan "
                              "expected it disabled; make a new plan")
    try:
        target.delete(account)
    except NotFound:
        return Outcome(DONE, account_id=account.id, note="gone already")
    return Outcome(DONE, account_id=account.id, before={ACTIVE: False}, after={"deleted": True})


def _lookup(target, item: PlanItem) -> Account | None:
    for path, value in item.lookup:
        matches = target.find_accounts(path, value)
        if len(matches) == 1:
            return matches[0]
    return None


def _modify(target, item: PlanItem, ci: Callable[[str], bool], write_only: frozenset[str] = frozenset(),
            remembered: Mapping[str, Any] | None = None) -> Outcome:
    account = target.get_account(item.account_id)
    if account is None:
        return Outcome(FAILED, f"account {item.account_id} no longer exists on {item.target}")
    account = with_written(account, write_only, remembered)
    needed: dict[str, Any] = {}
    for path, change in item.changes.items():
        have = account.active if path == ACTIVE else account.attrs.get(path)
        if same_value(have, change.after, ci(path)):
            continue  # already as planned (e.g. applied before a kill)
        if not same_value(have, change.before, ci(path)):
            return Outcome(STALE, f"{path} is now {have!r} on {item.target}, the plan expected "
                                  f"{change.before!r}; make a new plan")
        needed[path] = change.after
    if not needed:
        return Outcome(DONE, account_id=account.id)   # nothing sent, so nothing to audit
    target.modify(account, needed)
    before = {p: (account.active if p == ACTIVE else account.attrs.get(p)) for p in needed}
    return Outcome(DONE, account_id=account.id, before=before, after=needed)
