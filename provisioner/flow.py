"""The one flow: source -> identities -> planner -> stored plan -> executor.

The CLI and the scheduler call these functions; they hold no printing.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator

from . import clock
from .errors import ConfigError, ProvisionerError
from .executor import ApplyResult, apply_plan
from .mapping import load_mapping
from .model import APPLICABLE_OPS, UNREADABLE, Plan, PlanItem, SourceResult
from .planner import PlanPolicy, TargetInput, make_plan
from .secrets import redact
from .sources import read_source
from .clock import utcnow
from .state import StateDB
from .target_handle import TargetHandle, link_keys, open_target

log = logging.getLogger(__name__)

# What one item costs on a target, in requests: a create is one POST; every
# other change (a delete too) re-reads the account first (the stale check), then writes it.
_REQUESTS_PER_ITEM = {"create": 1, "update": 2, "disable": 2, "enable": 2, "delete": 2}
# Assumed round trip when a target cannot time its requests, for the estimate only.
_ASSUMED_LATENCY_S = 0.15
# A target times reads (see Target.seconds_per_request); a write costs its server more (the
# body is validated, stored, and sent back): one write counts as this many timed reads.
# Measured on scim2-server at concurrency 8: a create took 1.1-1.6x a user search, median
# 1.35, from 40 to 1,700 users.
_WRITE_COST = 1.35


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def select_targets(settings, names: Iterable[str] = ()) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in settings.targets]
    if unknown:
        raise ConfigError(f"{settings.config_path.name}: no target named {', '.join(unknown)} "
                          f"(configured: {', '.join(settings.targets)})")
    return names or list(settings.targets)


@contextmanager
def open_targets(settings, names: Iterable[str] = ()) -> Iterator[dict[str, TargetHandle]]:
    handles: dict[str, TargetHandle] = {}
    try:
        for name in select_targets(settings, names):
            target_settings = settings.targets[name]
            mapping = load_mapping(target_settings.mapping)
            handles[name] = open_target(name, target_settings, mapping)
        yield handles
    finally:
        for handle in handles.values():
            handle.close()


@dataclass
class PlanOutcome:
    plan: Plan
    unreadable: dict[str, str]
    run_id: str = ""
    # how long storing the plan took: an apply loads it about as fast (the estimate counts it)
    save_seconds: float = 0.0


def build_plan(settings, state: StateDB, handles: dict[str, TargetHandle], *,
               only: Iterable[str] = (), trigger: str = "cli", now=None, as_of=None,
               on_saved: Callable[[Plan, dict[str, str], str], None] | None = None) -> PlanOutcome:
    """Read the source and every target, compute the plan, store it and record the run.
    `on_saved(plan, unreadable, run_id)` runs in the transaction that stores the plan (the
    fleet defers its jobs there: no plan is stored without them, nor a job without its plan).
    `as_of` (a date): the plan as it would be on that day (provisioner.clock); it is stored
    with that day and never counts as the run that left the targets in step."""
    run_id = new_id()
    state.start_run(run_id, "plan", trigger)
    if as_of is not None:
        now = clock.moment_of(as_of, settings.policy.timezone)
    try:
        with collector_paused():
            plan, unreadable, save_seconds = _make_and_save_plan(settings, state, handles, only, now,
                                                                 on_saved, run_id, as_of)
    except BaseException as exc:
        state.finish_run(run_id, "failed", error=str(exc) or type(exc).__name__)
        raise
    nothing_to_do = not any(i.op in APPLICABLE_OPS for i in plan.items)
    state.finish_run(run_id, "blocked" if plan.status == "blocked" else "ok", plan_id=plan.plan_id,
                     identities=plan.identities, counts=plan_counts(plan),
                     # an empty, unblocked, whole plan means the targets match the source
                     successful=nothing_to_do and plan.status != "blocked" and not only and
                     as_of is None and set(handles) == set(settings.targets))
    return PlanOutcome(plan, unreadable, run_id, save_seconds)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a plan is built: reading 100,000 people and
    accounts makes millions of objects that live until the plan is stored, and the
    collector would walk them all again and again (a fifth of a large plan's time).
    They hold no cycles to free; it is switched back on, never left off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _make_and_save_plan(settings, state: StateDB, handles: dict[str, TargetHandle],
                        only: Iterable[str], now, on_saved, run_id: str,
                        as_of=None) -> tuple[Plan, dict[str, str], float]:
    """The plan, the targets whose accounts could not be read (why), and the seconds storing it took."""
    zone = settings.policy.timezone
    today = clock.today(now, zone)
    source = read_source(settings, now=now)
    check_mappings(settings, handles, source)
    source = with_link_attrs(source, state, settings.targets)
    inputs, unreadable = [], {}
    listed = list_all_accounts(handles)
    for name, handle in handles.items():
        target = handle.target
        write_only = frozenset(target.write_only)
        accounts, why = listed[name]
        if why is not None:
            unreadable[name] = why
            log.error("target %s: %s", name, why)
        life = settings.targets[name].lifecycle(settings.policy)
        check_keep(settings, name, handle.mapping)
        remembered = write_only or handle.mapping.drift_tracked
        inputs.append(TargetInput(
            name=name, mapping=handle.mapping, accounts=accounts, links=state.links(name),
            capabilities=frozenset(target.capabilities),
            validate=target.validate, manual_create=target.manual_create,
            read_only=frozenset(target.read_only),
            write_only=write_only, written=state.written(name) if remembered else {},
            delete_after_days=life["delete_after_days"], unmanaged=life["unmanaged"], keep=life["keep"],
            disabled_on=({a: clock.day_of(at, zone) for a, at in state.disabled_at(name).items()}
                         if life["delete_after_days"] is not None else {}),
            manual_delete=target.manual_delete,
            immutable=frozenset(target.immutable), partial_change=target.partial_change,
            rename_hint=target.rename_hint,
            rename=settings.targets[name].rename_mode(settings.policy),
            required=frozenset(target.required_paths),
            **settings.targets[name].change_limits(settings.policy), unreadable=why))
    policy = PlanPolicy(missing=settings.policy.missing,
                        min_source_ratio=settings.policy.min_source_ratio)
    plan = make_plan(source, inputs, policy, plan_id=new_id(), created_at=utcnow(),
                     baseline_identities=state.baseline_identities(),
                     baseline_sources=state.baseline_sources(), only=only, today=today,
                     as_of=as_of.isoformat() if as_of is not None else None)
    with state.transaction():
        started = time.perf_counter()
        state.save_plan(plan)
        saved = time.perf_counter() - started
        if on_saved is not None:
            on_saved(plan, unreadable, run_id)
    return plan, unreadable, saved


def list_all_accounts(handles: dict[str, TargetHandle]) -> dict[str, tuple[list, str | None]]:
    """Each target's accounts, or why they could not be read. The targets are read at
    the same time (each waits on its own server); one failing spoils no other."""
    def read(handle: TargetHandle) -> tuple[list, str | None]:
        try:
            return handle.target.list_accounts(), None
        except ProvisionerError as exc:
            return [], f"{UNREADABLE}: {exc}"

    if len(handles) <= 1:
        return {name: read(handle) for name, handle in handles.items()}
    with ThreadPoolExecutor(max_workers=len(handles), thread_name_prefix="list") as pool:
        futures = {name: pool.submit(read, handle) for name, handle in handles.items()}
        return {name: future.result() for name, future in futures.items()}


LINKS_PREFIX = "links."


def check_keep(settings, name: str, mapping) -> None:
    """A keep pattern (the target's, else the policy's) reads a mapped attribute: the accounts
    as read hold no other."""
    keep = settings.targets[name].lifecycle(settings.policy)["keep"]
    unknown = [path for path in keep if path not in mapping.attributes]
    if unknown:
        own = settings.targets[name].keep is not None
        where = f"targets.{name}.keep" if own else "policy.keep"
        raise ConfigError(f"{settings.config_path.name}: {where}.{unknown[0]}: not an attribute of "
                          f"mapping {mapping.path.name} (mapped: {', '.join(mapping.attributes)})")


def check_mappings(settings, handles: dict[str, TargetHandle], source: SourceResult) -> None:
    """ConfigError, one sentence per problem, when a mapping reads a source attribute
    no source provides (a typo would plan that attribute empty on every account) or
    takes one value from a multi-valued attribute without saying which."""
    if source.attributes is None:
        return
    provided = [*sorted(source.attributes),
                *(f"{LINKS_PREFIX}{name}.{key}" for name, target in settings.targets.items()
                  for key in sorted(link_keys(target.type)))]
    problems = [problem for handle in handles.values()
                for problem in handle.mapping.source_problems(provided, source.multi_valued)]
    if problems:
        raise ConfigError("\n".join(problems))


def with_link_attrs(source: SourceResult, state: StateDB, target_names: Iterable[str]) -> SourceResult:
    """Each identity's attrs plus what targets remembered with its links, as
    `links.<target>.<key>` (e.g. an extension the target assigned), so a mapping
    can take a value another target gave the person."""
    extra: dict[str, dict[str, Any]] = {}
    for target in target_names:
        for identity, data in state.link_data(target).items():
            for key, value in (data or {}).items():
                if value is not None:
                    extra.setdefault(identity.casefold(), {})[f"{LINKS_PREFIX}{target}.{key}"] = value
    if not extra:
        return source
    identities = tuple(
        replace(i, attrs={**i.attrs, **extra[i.key.casefold()]}) if i.key.casefold() in extra else i
        for i in source.identities)
    return replace(source, identities=identities)


def run_apply(settings, state: StateDB, handles: dict[str, TargetHandle], plan: Plan, *,
              allow_mass_change: bool = False, trigger: str = "cli",
              on_item: Callable[[PlanItem, str], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> ApplyResult:
    run_id = new_id()
    state.start_run(run_id, "apply", trigger, plan_id=plan.plan_id)
    try:
        result = apply_plan(plan, handles, state, run_id=run_id,
                            allow_mass_change=allow_mass_change, on_item=on_item,
                            should_stop=should_stop)
    except BaseException as exc:
        state.finish_run(run_id, "failed", error=redact(str(exc)) or type(exc).__name__)
        raise
    status = result.plan_status
    state.set_plan_status(plan.plan_id, status)
    # asked to stop (Ctrl-C, SIGTERM): the plan is partial, the run itself did what it was told
    run_status = "stopped" if result.stopped else "ok" if status == "applied" else status
    state.finish_run(run_id, run_status, identities=plan.identities,
                     counts=result.counts,
                     successful=status == "applied" and set(plan.targets) == set(settings.targets))
    return result


def plan_counts(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in plan.items:
        counts[item.op] = counts.get(item.op, 0) + 1
    return counts


def estimate_seconds(plan: Plan, target: str, rate_limit: float | None, concurrency: int,
                     handle: TargetHandle | None = None, fixed_seconds: float = 0.0) -> float:
    """How long applying the target's items should take: each request at the cost measured
    on the target at this concurrency, a write weighted as _WRITE_COST reads (else an assumed
    round trip shared by the threads),
    never faster than its rate limit allows, plus `fixed_seconds` the apply pays whatever
    the target (see apply_fixed_seconds)."""
    # every item writes once; its other requests are reads (an update's stale check)
    per_item = [_REQUESTS_PER_ITEM[i.op] for i in plan.items if i.target == target and i.op in _REQUESTS_PER_ITEM]
    requests, writes = sum(per_item), len(per_item)
    if not requests:
        return 0.0
    measured = handle.target.seconds_per_request(max(1, concurrency)) if handle is not None else None
    weighted = requests - writes + writes * _WRITE_COST
    if measured is not None and rate_limit and measured * rate_limit >= 0.9:
        weighted = requests  # the timing was the rate limiter's pacing, not the server's work
    by_concurrency = (weighted * measured if measured is not None
                      else requests * _ASSUMED_LATENCY_S / max(1, concurrency))
    by_rate = requests / rate_limit if rate_limit else 0.0
    return fixed_seconds + max(by_concurrency, by_rate)


def apply_fixed_seconds(outcome: PlanOutcome, started_up: float | None) -> float:
    """What an apply of this plan costs besides its requests, as measured by this process:
    `started_up` (seconds from this process's start to its targets being open; None when
    the apply runs in this process, which has started already), and loading the plan twice
    (before the first request and for the result), each about as long as storing it took."""
    return (started_up or 0.0) + 2 * outcome.save_seconds


def process_age() -> float | None:
    """Wall seconds since this process started (Linux /proc), None where that cannot be read.
    A separate `provisioner apply` pays about what this process paid to get this far:
    interpreter, imports, config, state DB, targets opened."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            # after the command name's ")": field 3 on; starttime is field 22, in clock ticks
            start_ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
