"""Correlate and diff: (identities, accounts, links, mapping, policy) -> Plan.

Pure: no I/O, no clock, no randomness. The caller passes the plan id and
time, so the same inputs always give the same plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import lifecycle
from .model import (
    ACTIVE, CONFLICT, CREATE, DELETE, DISABLE, DRIFT, ENABLE, MANUAL, UPDATE,
    Account, Change, Identity, Link, Plan, PlanItem, SourceResult, TargetSummary, normalize, same_value,
    with_written,
)


@dataclass(frozen=True)
class PlanPolicy:
    missing: str = "disable"          # what to do with accounts whose identity left the source or the scope
    min_source_ratio: float = 0.5


@dataclass(frozen=True)
class TargetInput:
    name: str
    mapping: Any                      # provisioner.mapping.Mapping (duck-typed to keep this module pure)
    accounts: Sequence[Account]
    links: Mapping[str, str]          # identity key -> account id
    capabilities: frozenset[str] = frozenset({CREATE, UPDATE, DISABLE, ENABLE})
    max_disable_percent: float = 10.0
    max_disable_count: int = 50
    max_update_percent: float = 30.0
    max_update_count: int = 500
    max_clear_percent: float = 5.0    # updates emptying a value that was set
    max_clear_count: int = 20
    # a percentage limit counts only beyond this many items of its kind: one
    # leaver among five accounts is not a mass change
    percent_floor: int = 5
    # paths every account must have (SCIM's userName): a create or update that
    # would leave a mapped one empty is a manual item, never sent
    required: frozenset[str] = frozenset()
    unreadable: str | None = None     # why the accounts could not be read; the target is then blocked
    # the target's own plan-time check of the attributes it would be sent
    # (e.g. a team name it does not know): a sentence makes the item a conflict
    validate: Callable[[Mapping[str, Any]], str | None] | None = None
    # a target that cannot create accounts may say what a person should make by
    # hand: (identity key, wanted attributes) -> the manual item's sentence
    manual_create: Callable[[str, Mapping[str, Any]], str] | None = None
    # paths the target shows but cannot change (e.g. a name used only to correlate): never diffed
    read_only: frozenset[str] = frozenset()
    # paths the target can write but never shows (CCS agent settings): diffed
    # against `written`, account id -> {path: the value this tool last wrote}
    write_only: frozenset[str] = frozenset()
    written: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # target paths that can never change on an existing account (Ytel's username):
    # a diff on one is a manual item, or with rename = "recreate" a create of a
    # new account plus a disable of the old one
    immutable: frozenset[str] = frozenset()
    rename: str = "manual"            # "manual" | "recreate"
    # what a person can do about such a change instead, where the target has
    # its own way (None: suggest rename = "recreate")
    rename_hint: str | None = None
    # a change the target can make only in part (Ytel adds people to work groups
    # but has no documented call that removes them): (path, have, want) -> (the
    # value it can reach, a sentence telling a person what is left), or None
    partial_change: Callable[[str, Any, Any], tuple[Any, str] | None] | None = None
    # the lifecycle (provisioner.lifecycle): days after this tool's disable that an account is
    # deleted (None: never); account id -> the day this tool disabled it; for a target that
    # cannot delete, the sentence a person follows (None from it: disabled is final there)
    delete_after_days: int | None = None
    disabled_on: Mapping[str, date] = field(default_factory=dict)
    manual_delete: Callable[[Account], str | None] | None = None
    max_delete_percent: float = 5.0
    max_delete_count: int = 10
    # accounts that match nobody: "ignore", "report" (listed in the plan) or "disable";
    # `keep`: path -> full-match regexes of accounts never disabled as orphans
    unmanaged: str = "ignore"
    keep: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass
class _TargetPlan:
    items: list[PlanItem] = field(default_factory=list)
    adopt: list[Link] = field(default_factory=list)
    managed: set[str] = field(default_factory=set)


def make_plan(source: SourceResult, targets: Sequence[TargetInput], policy: PlanPolicy, *,
              plan_id: str, created_at: str, baseline_identities: int | None = None,
              baseline_sources: Mapping[str, int] | None = None,
              only: Iterable[str] | None = None, today: date | None = None,
              as_of: str | None = None) -> Plan:
    """Build the plan for every target.

    `baseline_identities` is the identity count of the last successful run,
    `baseline_sources` each source's own count then: the merged set or any
    one source shrunk below `policy.min_source_ratio` of it blocks all.
    `only` limits the items to those identity keys (the diff is still whole).
    `today` is the day grace periods count to (None: no account is deleted); `as_of`
    the day the plan was asked for (`plan --as-of`), recorded with it.
    """
    only_keys = {k.casefold() for k in only} if only else None
    source_block = _source_block_reason(source, baseline_identities, baseline_sources, policy)
    held = {r.key.casefold() for r in source.rejected if r.key}
    held.update(k.casefold() for k in source.held)
    labels = {i.key: i.label for i in source.identities if i.label}

    summaries: dict[str, TargetSummary] = {}
    items: list[PlanItem] = []
    adopt: list[Link] = []
    for target in targets:
        if target.unreadable:
            summaries[target.name] = TargetSummary(0, {}, 0, True, target.unreadable)
            continue
        tp = _plan_target(source.identities, held, target, policy, today)
        by_id = {a.id: a for a in target.accounts}
        held_accounts = _held_accounts(target, held, source.rejected, tp.managed)
        orphan_ids = {a.id for a in target.accounts} - tp.managed - held_accounts
        orphans = None
        if target.unmanaged != "ignore":
            orphans = lifecycle.orphan_entries(target.accounts, orphan_ids, target.mapping, target.keep)
            if target.unmanaged == "disable":
                tp.items.extend(_orphan_disables(target, orphans, by_id))
        target_items = [_named(i, labels, by_id, target.mapping) for i in tp.items
                        if only_keys is None or (i.identity or "").casefold() in only_keys]
        counts: dict[str, int] = defaultdict(int)
        for item in target_items:
            counts[item.op] += 1
        block = source_block or _mass_change_reason(target_items, len(target.accounts), target)
        summaries[target.name] = TargetSummary(
            accounts=len(target.accounts), counts=dict(counts),
            unmanaged=len(orphan_ids),
            blocked=block is not None, block_reason=block, held=len(held_accounts), orphans=orphans)
        items.extend(target_items)
        adopt.extend(l for l in tp.adopt if only_keys is None or l.identity.casefold() in only_keys)

    # deletes first, in every view: they are the changes that cannot be undone
    items.sort(key=lambda i: i.op != DELETE)
    numbered = tuple(_with_id(item, n) for n, item in enumerate(items, 1))
    status = "blocked" if any(s.blocked for s in summaries.values()) else "pending"
    return Plan(plan_id=plan_id, created_at=created_at, status=status,
                identities=len(source.identities), rejected=source.rejected,
                targets=summaries, items=numbered, adopt=tuple(adopt),
                source_info=_source_info(source, targets), as_of=as_of)


def _orphan_disables(target: TargetInput, orphans, by_id: Mapping[str, Account]) -> list[PlanItem]:
    """policy.unmanaged = "disable": each active orphan no keep pattern spares."""
    out = []
    for orphan in orphans:
        if not orphan["active"] or orphan["kept"]:
            continue
        account = by_id[orphan["account_id"]]
        out.append(_state_item(target, DISABLE, None, account, {},
                               f"account {account.id} matches nobody in the source "
                               "(policy unmanaged = \"disable\")"))
    return out


def _source_info(source: SourceResult, targets: Sequence[TargetInput]) -> dict:
    """The plan's extra source parts; a plain single source adds none."""
    info: dict[str, Any] = {}
    if source.counts:
        info["sources"] = {name: dict(c) for name, c in source.counts.items()}
    if source.upcoming or source.counts:
        info["upcoming"] = [
            {"identity": u.identity, "change": u.change, "date": u.date,
             "targets": [t.name for t in targets if t.mapping.in_scope(u.attrs)]}
            for u in sorted(source.upcoming, key=lambda u: (u.date, u.identity))]
    if source.unmatched:
        info["unmatched"] = [r.to_dict() for r in source.unmatched]
    return info


def _with_id(item: PlanItem, n: int) -> PlanItem:
    return PlanItem(**{**item.__dict__, "id": f"{n:06d}"})


def _named(item: PlanItem, labels: Mapping[str, str], accounts: Mapping[str, Account], mapping) -> PlanItem:
    """The item with the person it is about: the source's label, else the account's correlation value."""
    person = labels.get(item.identity or "")
    if person is None and item.account_id in accounts:
        value = accounts[item.account_id].attrs.get(mapping.correlate[0])
        person = value if isinstance(value, str) else None
    return PlanItem(**{**item.__dict__, "person": person}) if person else item


def _held_accounts(target: TargetInput, held: set[str], rejected: Sequence, managed: set[str]) -> set[str]:
    """Accounts of held people: linked to one, or correlating to a rejected record's attributes."""
    present = {a.id for a in target.accounts}
    ids = {a for k, a in target.links.items() if k.casefold() in held and a in present}
    records = [r.attrs for r in rejected if r.attrs]
    if records:
        index = _CorrelationIndex(target.accounts, target.mapping)
        for attrs in records:
            ids.update(a.id for a in index.candidates(target.mapping.render(attrs))[0] if a.id not in managed)
    return ids


def _source_block_reason(source: SourceResult, baseline: int | None,
                         baseline_sources: Mapping[str, int] | None, policy: PlanPolicy) -> str | None:
    """The merged set against its baseline, then (with several sources) each source against its own:
    an empty directory beside a full HR export leaves the merged count whole."""
    ratio = policy.min_source_ratio
    reasons = []
    count = len(source.identities)
    if baseline and count < ratio * baseline:
        reasons.append(f"the source yielded {count} identities, fewer than "
                       f"{ratio:.0%} of the {baseline} of the last successful run")
    if len(source.counts) > 1:
        records = {name: sum(c.get(k, 0) for k in ("identities", "rejected", "held"))
                   for name, c in source.counts.items()}
        for name, counts in source.counts.items():
            have, before = counts.get("identities", 0), (baseline_sources or {}).get(name)
            if before and have < ratio * before:
                reasons.append(f"source {name} yielded {have} identities ({counts.get('rejected', 0)} "
                               f"rejected), fewer than {ratio:.0%} of the {before} of the last successful run")
            elif not records[name] and any(records.values()):
                beside = ", ".join(f"{n} with {c.get('identities', 0)} identities"
                                   for n, c in source.counts.items() if records[n])
                reasons.append(f"source {name} returned no records, beside {beside}: an empty source "
                               "next to others is never normal (check its base_dn, filter or path)")
    return "; ".join(reasons) or None


def _mass_change_reason(items: Sequence[PlanItem], accounts: int, target: TargetInput) -> str | None:
    """Why a target's disables, updates or clears are too many to apply unreviewed, or None."""
    disables = sum(1 for i in items if i.op == DISABLE)
    updates = sum(1 for i in items if i.op == UPDATE)
    deletes = sum(1 for i in items if i.op == DELETE)
    cleared: dict[str, int] = defaultdict(int)   # path -> accounts it would be emptied on
    clearing = 0
    for item in items:
        if item.op not in (UPDATE, ENABLE):
            continue
        paths = [p for p, c in item.changes.items()
                 if p != ACTIVE and normalize(c.before) is not None and normalize(c.after) is None]
        clearing += bool(paths)
        for path in paths:
            cleared[path] += 1
    detail = ", ".join(f"{p}: {n}" for p, n in sorted(cleared.items(), key=lambda x: (-x[1], x[0])))
    reasons = [
        _over(deletes, "deletes", accounts, target.max_delete_count, target.max_delete_percent,
              "max_delete", target.percent_floor),
        _over(disables, "disables", accounts, target.max_disable_count, target.max_disable_percent,
              "max_disable", target.percent_floor),
        _over(updates, "updates", accounts, target.max_update_count, target.max_update_percent,
              "max_update", target.percent_floor),
        _over(clearing, f"updates emptying a value that is set ({detail})", accounts,
              target.max_clear_count, target.max_clear_percent, "max_clear", target.percent_floor)]
    return "; ".join(r for r in reasons if r) or None


def _over(n: int, what: str, accounts: int, count: int, percent: float, key: str, floor: int) -> str | None:
    if n > count:
        return f"{n} {what} exceed {key}_count = {count}"
    if accounts and n > floor and n * 100.0 / accounts > percent:
        return (f"{n} {what} are {n * 100.0 / accounts:.1f}% of {accounts} accounts, "
                f"over {key}_percent = {percent:g}")
    return None


def _plan_target(identities: Sequence[Identity], held: set[str], target: TargetInput,
                 policy: PlanPolicy, today: date | None = None) -> _TargetPlan:
    mapping = target.mapping
    tp = _TargetPlan()
    by_id = ({a.id: with_written(a, target.write_only, target.written.get(a.id)) for a in target.accounts}
             if target.write_only else {a.id: a for a in target.accounts})
    owner_of = {account_id: key for key, account_id in target.links.items()}
    source_keys = {i.key for i in identities}
    index = _CorrelationIndex(list(by_id.values()), mapping)

    create_inactive = {i.key for i in identities if i.create_inactive}
    desired: dict[str, dict[str, Any]] = {}
    out_of_scope: list[Identity] = []
    for identity in identities:
        if mapping.in_scope(identity.attrs):
            desired[identity.key] = mapping.render(identity.attrs)
        else:
            out_of_scope.append(identity)

    # Pass 1: find each in-scope identity's account (link, else correlation).
    found: dict[str, Account] = {}
    notes: dict[str, str] = {}
    claims: dict[str, list[str]] = defaultdict(list)
    conflicts: dict[str, str] = {}
    links = target.links
    for key, want in desired.items():
        account_id = links.get(key)
        if account_id is not None and account_id in by_id:
            found[key] = by_id[account_id]
            tp.managed.add(account_id)
            continue
        if account_id is not None:
            notes[key] = f"linked account {account_id} is no longer on the target"
        candidates, path = index.candidates(want)
        # an account linked to another identity that is still in the source is taken
        free = (candidates if not owner_of else  # no links yet (a first run): nobody's account is taken
                [a for a in candidates if owner_of.get(a.id) in (None, key) or owner_of[a.id] not in source_keys])
        if len(free) > 1:
            conflicts[key] = (f"{path} = {want.get(path)!r} matches {len(free)} accounts "
                              f"({', '.join(sorted(a.id for a in free))}); link the right one by hand")
        elif len(free) == 1:
            claims[free[0].id].append(key)
        elif candidates:
            other = owner_of[candidates[0].id]
            conflicts[key] = (f"{path} = {want.get(path)!r} matches account {candidates[0].id}, "
                              f"which is linked to {other}")
    for account_id, keys in claims.items():
        tp.managed.add(account_id)
        if len(keys) > 1:
            for key in keys:
                conflicts[key] = (f"{', '.join(keys)} all correlate to account {account_id}; "
                                  "fix the source so only one person matches")
        else:
            found[keys[0]] = by_id[account_id]
            notes[keys[0]] = "existing account found by correlation"
    _mark_create_collisions(desired, found, conflicts, mapping)

    # Pass 2: one item per identity, in source order.
    immutable = bool(target.immutable)
    # paths whose drift the mapping adopts or alerts on; the target's unreadable ones are no drift
    drift_tracked = bool(mapping.drift_tracked)
    drift_skip = target.write_only | target.read_only
    for key, want in desired.items():
        if key in conflicts:
            tp.items.append(_item(target, CONFLICT, key, None, {}, conflicts[key]))
            continue
        account = found.get(key)
        if account is not None and immutable and _immutable_changes(target, want, account):
            tp.items.extend(_rename_items(target, key, want, account))
            continue
        if account is None:
            item = _create_item(target, key, want, notes.get(key), key in create_inactive)
        elif want.get(ACTIVE, True) is False and _deletable(target, account, today) \
                and links.get(key) == account.id:
            item = _delete_item(target, key, account, today)
            if item is None:
                continue
        else:
            leave, drift, reverted = (lifecycle.drift_of(mapping, want, account, target.written.get(account.id),
                                                         skip=drift_skip) if drift_tracked else ((), {}, {}))
            if drift and account.active and want.get(ACTIVE, True) is not False:
                tp.items.append(_item(target, DRIFT, key, account.id, drift,
                                      lifecycle.drift_reason(target.name, drift, account)))
            item = _diff_item(target, key, want, account, notes.get(key), leave)
            reverted = {p: c for p, c in reverted.items() if item is not None and p in item.changes}
            if reverted and item.op == UPDATE:
                item = replace(item, reason=lifecycle.revert_reason(item.reason, target.name, reverted))
            if item is None and links.get(key) != account.id:
                tp.adopt.append(Link(target.name, key, account.id))
        if item is not None and target.validate and item.op in (CREATE, UPDATE, ENABLE):
            problem = target.validate(want)
            if problem:
                item = _item(target, CONFLICT, key, item.account_id, item.changes, problem)
        if item is not None and target.partial_change and item.op in (UPDATE, ENABLE):
            item, manual = _split_partial(target, item, notes.get(key))
            tp.items.extend(i for i in (item, manual) if i is not None)
        elif item is not None:
            tp.items.append(item)

    # Linked accounts whose person left the source or the target's scope.
    if policy.missing == "disable":
        scope_left = {i.key for i in out_of_scope}
        claimed = {a.id for a in found.values()}
        for key, account_id in sorted(target.links.items()):
            if key in desired or key.casefold() in held or account_id in claimed:
                continue
            account = by_id.get(account_id)
            if account is None:
                continue
            tp.managed.add(account_id)
            if not account.active:
                if _deletable(target, account, today):
                    item = _delete_item(target, key, account, today)
                    if item is not None:
                        tp.items.append(item)
                continue
            why = ("is no longer in the target's scope" if key in scope_left
                   else "is no longer in the source")
            tp.items.append(_state_item(target, DISABLE, key, account, {}, f"{key} {why}"))
    else:
        tp.managed.update(a for k, a in target.links.items() if a in by_id)
    return tp


def _mark_create_collisions(desired, found, conflicts, mapping) -> None:
    """Two new accounts wanting the same correlation value would collide on the target."""
    for path in mapping.correlate:
        ci = mapping.case_insensitive(path)
        seen: dict[Any, list[str]] = defaultdict(list)
        for key, want in desired.items():
            if key in found or key in conflicts:
                continue
            value = normalize(want.get(path), ci)
            if value is not None:
                seen[value].append(key)
        for keys in seen.values():
            if len(keys) > 1:
                for key in keys:
                    conflicts[key] = (f"{', '.join(keys)} would all get {path} = "
                                      f"{desired[key].get(path)!r}; fix the source so each is unique")


def _create_item(target: TargetInput, key: str, want: dict, note: str | None,
                 inactive_ok: bool = False) -> PlanItem | None:
    if want.get(ACTIVE, True) is False and not inactive_ok:
        return None  # nobody needs a disabled account made for them (a prehire may)
    mapping = target.mapping
    lookup = tuple((p, want[p]) for p in mapping.correlate if want.get(p) is not None)
    if not lookup:
        missing = mapping.correlate[0]
        sources = ", ".join(mapping.sources_of(missing)) or "the mapping"
        return _item(target, MANUAL, key, None, {},
                     f"{key} cannot be provisioned: {missing} has no value (from {sources}); "
                     "fill it in the source")
    missing = _required_without_value(target, want, want)
    if missing:
        return _item(target, MANUAL, key, None, {},
                     f"{key} cannot be created: {_required_sentence(target, missing)}")
    if CREATE not in target.capabilities:
        reason = ((target.manual_create(key, want) if target.manual_create else None)
                  or f"create an account for {key} by hand: this target cannot create accounts")
        return _item(target, MANUAL, key, None, {}, reason)
    changes = {p: Change(None, v) for p, v in want.items() if v is not None}
    reason = f"{key} is in the source and has no account"
    if want.get(ACTIVE, True) is False:
        reason += " (created disabled until the start date)"
    if note:
        reason += f" ({note})"
    return _item(target, CREATE, key, None, changes, reason, attrs=want, lookup=lookup)


def _deletable(target: TargetInput, account: Account, today: date | None) -> bool:
    """Disabled by this tool, still disabled, and past the grace period."""
    left = lifecycle.grace_left(target.disabled_on.get(account.id), target.delete_after_days, today)
    return left is not None and left <= 0 and not account.active


def _delete_item(target: TargetInput, key: str, account: Account, today: date) -> PlanItem | None:
    """A delete, or for a target that cannot delete a manual item (None: disabled is final there)."""
    reason = lifecycle.delete_reason(key, target.disabled_on[account.id], target.delete_after_days, today)
    if DELETE in target.capabilities:
        return _item(target, DELETE, key, account.id, {}, reason)
    sentence = target.manual_delete(account) if target.manual_delete else (
        f"delete account {account.id} by hand: this target cannot delete accounts")
    if sentence is None:
        return None
    return _item(target, MANUAL, key, account.id, {}, f"{reason}; {sentence}")


def _diff_item(target: TargetInput, key: str, want: dict, account: Account,
               note: str | None, leave: Iterable[str] = ()) -> PlanItem | None:
    ci, read_only, have_attrs = target.mapping.case_insensitive, target.read_only, account.attrs
    if leave:
        read_only = read_only | frozenset(leave)   # drift adopted or alerted: not written back
    changes = {}
    for path, value in want.items():
        if path == ACTIVE or path in read_only:
            continue
        have = have_attrs.get(path)
        if have == value and value.__class__ is str and have.__class__ is str:
            continue  # the same text: equal however the path compares (most paths of most accounts)
        if not same_value(have, value, ci(path)):
            changes[path] = Change(have, value)
    want_active = want.get(ACTIVE, True) is not False
    active = account.active
    if active and not want_active:
        return _state_item(target, DISABLE, key, account, {}, f"{key} is inactive in the source")
    emptied = (_required_without_value(target, changes, {p: c.after for p, c in changes.items()})
               if changes else ())
    if emptied and (active or want_active):
        return _item(target, MANUAL, key, account.id, changes,
                     f"not sent: {_required_sentence(target, emptied)}")
    if not active and want_active:
        return _state_item(target, ENABLE, key, account, changes, f"{key} is active in the source again")
    if not active or not changes:
        return None
    reason = _differ_reason(changes, note)
    if UPDATE not in target.capabilities:
        return _item(target, MANUAL, key, account.id, changes, f"update by hand: {reason}")
    return _item(target, UPDATE, key, account.id, changes, reason)


def _required_without_value(target: TargetInput, paths: Iterable[str], values: Mapping[str, Any]) -> list[str]:
    """The mapped `paths` the target requires whose value in `values` is empty."""
    required = {p.casefold() for p in target.required}
    return [p for p in paths if p.casefold() in required and normalize(values.get(p)) is None]


def _required_sentence(target: TargetInput, paths: list[str]) -> str:
    parts = []
    for path in paths:
        sources = ", ".join(target.mapping.sources_of(path)) or "the mapping"
        parts.append(f"{path} is required on {target.name} and would have no value (from {sources})")
    return "; ".join(parts) + "; fill it in the source"


def _differ_reason(changes: Mapping[str, Change], note: str | None) -> str:
    reason = "attributes differ: " + ", ".join(changes)
    return f"{note}; {reason}" if note else reason


def _split_partial(target: TargetInput, item: PlanItem,
                   note: str | None) -> tuple[PlanItem | None, PlanItem | None]:
    """The part of an item the target can apply, and a manual item for the rest."""
    changes, left, sentences = dict(item.changes), {}, []
    for path, change in item.changes.items():
        if path == ACTIVE:
            continue
        split = target.partial_change(path, change.before, change.after)
        if split is None:
            continue
        reach, sentence = split
        left[path] = change
        sentences.append(sentence)
        if same_value(reach, change.before, target.mapping.case_insensitive(path)):
            del changes[path]
        else:
            changes[path] = Change(change.before, reach)
    if not left:
        return item, None
    manual = _item(target, MANUAL, item.identity, item.account_id, left, "; ".join(sentences))
    if item.op == UPDATE and not changes:
        return None, manual
    reason = _differ_reason(changes, note) if item.op == UPDATE else item.reason
    return PlanItem(**{**item.__dict__, "changes": changes, "reason": reason}), manual


def _immutable_changes(target: TargetInput, want: dict, account: Account) -> dict[str, Change]:
    """Immutable paths the source wants changed on an account that stays active."""
    if not target.immutable or want.get(ACTIVE, True) is False:
        return {}  # a leaver's account is disabled, not renamed
    ci = target.mapping.case_insensitive
    # in the mapping's order (`immutable` is a set): the same inputs give the same sentence
    return {p: Change(account.attrs.get(p), want.get(p)) for p in want
            if p in target.immutable and not same_value(account.attrs.get(p), want.get(p), ci(p))}


def _rename_items(target: TargetInput, key: str, want: dict, account: Account) -> list[PlanItem]:
    """A manual item, or (rename = "recreate") a create of the new account and a disable of the old."""
    moved = _immutable_changes(target, want, account)
    what = "; ".join(f"{key}'s {p} changed from {c.before!r} to {c.after!r}" for p, c in moved.items())
    if target.rename != "recreate":
        hint = target.rename_hint or (f"create the new account by hand, or set rename = "
                                      f"\"recreate\" for target {target.name} to create it and "
                                      "disable the old one")
        return [_item(target, MANUAL, key, account.id, moved,
                      f"{', '.join(moved)} cannot change on {target.name}: {what}; {hint}")]
    create = _create_item(target, key, want, f"replaces account {account.id}: {what}")
    problem = target.validate(want) if target.validate and create and create.op == CREATE else None
    if problem:
        create = _item(target, CONFLICT, key, None, create.changes, problem)
    items = [create] if create is not None else []
    # the old account is disabled only together with a create that can go ahead
    if account.active and create is not None and create.op == CREATE:
        items.append(_state_item(target, DISABLE, key, account, {},
                                 f"replaced by a new account for {key}: {what}"))
    return items


def _state_item(target: TargetInput, op: str, key: str, account: Account,
                changes: dict, reason: str) -> PlanItem:
    changes = {**changes, ACTIVE: Change(account.active, op == ENABLE)}
    if op not in target.capabilities:
        verb = "disable" if op == DISABLE else "enable"
        return _item(target, MANUAL, key, account.id, changes,
                     f"{verb} account {account.id} by hand ({reason}): this target cannot {verb} accounts")
    return _item(target, op, key, account.id, changes, reason)


def _item(target: TargetInput, op: str, key: str | None, account_id: str | None,
          changes: Mapping[str, Change], reason: str, attrs=None, lookup=()) -> PlanItem:
    return PlanItem(id="", target=target.name, op=op, identity=key, account_id=account_id,
                    changes=changes, reason=reason, attrs=attrs or {}, lookup=lookup)


class _CorrelationIndex:
    """Accounts by the normalized value of each correlation attribute."""

    def __init__(self, accounts: Sequence[Account], mapping):
        self.by_path: dict[str, dict[Any, list[Account]]] = {}
        # (path, how it compares, its table), worked out once: candidates runs for every person
        self._lookups: list[tuple[str, bool | str, dict[Any, list[Account]]]] = []
        for path in mapping.correlate:
            ci = mapping.case_insensitive(path)
            table: dict[Any, list[Account]] = defaultdict(list)
            for account in accounts:
                value = normalize(account.attrs.get(path), ci)
                if value is not None:
                    table[value].append(account)
            self.by_path[path] = table
            self._lookups.append((path, ci, table))

    def candidates(self, want: Mapping[str, Any]) -> tuple[list[Account], str | None]:
        """Accounts matching the first correlation attribute that matches any."""
        for path, ci, table in self._lookups:
            value = normalize(want.get(path), ci)
            if value is None:
                continue
            matches = table.get(value)
            if matches:
                return matches, path
        return [], None
