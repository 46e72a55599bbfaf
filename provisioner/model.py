"""The plain values that flow between the stages: identities, accounts, plan items.

Every stage takes and returns these; only sources, targets and the state DB do I/O.
"""

from __future__ import annotations

import unicodedata

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

# Operations a plan item can carry.
CREATE, UPDATE, DISABLE, ENABLE, MANUAL, CONFLICT = (
    "create", "update", "disable", "enable", "manual", "conflict")
# delete: an account this tool disabled, past its grace period (see provisioner.lifecycle);
# drift: a value changed on the target that on_drift = "alert" reports and never applies
DELETE, DRIFT = "delete", "drift"
OPS = (DELETE, CREATE, UPDATE, DISABLE, ENABLE, MANUAL, DRIFT, CONFLICT)
APPLICABLE_OPS = (DELETE, CREATE, UPDATE, DISABLE, ENABLE)

# Item statuses.
PENDING, IN_FLIGHT, DONE, FAILED, STALE, SKIPPED = (
    "pending", "in_flight", "done", "failed", "stale", "skipped")
# Items in these states are (re)tried by an apply; done and stale are final.
RUNNABLE = (PENDING, IN_FLIGHT, FAILED, SKIPPED)

# How a target's block reason starts when its accounts could not be listed: the
# plan then holds nothing for it, which must never read as "nothing to change".
UNREADABLE = "could not read its accounts"

# The target attribute that carries the enabled/disabled state of an account.
ACTIVE = "active"
# A comparison rule stronger than case_insensitive=True: case AND accents are
# ignored ("José" == "jose"); pass it wherever case_insensitive is taken.
FOLD = "fold"


@dataclass(frozen=True)
class Identity:
    """One person as the source of truth describes them.

    `attrs` holds source attribute names (after the column map) to trimmed
    string values; an empty cell is absent, never "".
    """
    key: str
    attrs: Mapping[str, Any]
    row: int | None = None
    # a future hire inside policy.prehire_days with prehire_active = false:
    # their account is created, disabled, before they start
    create_inactive: bool = False
    # what a person knows the record by when the key does not say (an LDAP
    # entry's DN beside its entryUUID); None when the key is that name
    label: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A source row that could not become an identity, and why.

    Its key holds that person on every target (no update, no disable). When
    several sources are merged, `key` is the joined person's key and `source`
    the source the record came from.
    """
    row: int
    key: str | None
    reason: str
    source: str | None = None
    # the record's attributes as read: how the merge finds the person it
    # belongs to, and the planner the accounts it holds; never stored
    attrs: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        out = {"row": self.row, "key": self.key, "reason": self.reason}
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True)
class Upcoming:
    """A dated change within policy.lookahead_days: someone starts or leaves."""
    identity: str
    change: str                       # "starts" | "leaves"
    date: str                         # YYYY-MM-DD
    attrs: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SourceResult:
    identities: tuple[Identity, ...]
    rejected: tuple[Rejected, ...] = ()
    # keys of people the source knows but deliberately leaves out for now
    # (hired in the future): their existing accounts are left alone, never
    # disabled as "gone from the source"
    held: tuple[str, ...] = ()
    upcoming: tuple[Upcoming, ...] = ()
    # per source name: {"identities": n, "rejected": m, ...}
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # records found only in a non-authoritative source: reported, not provisioned
    unmatched: tuple[Rejected, ...] = ()
    # the attribute names the source provides (a CSV header after the column
    # map, an LDAP search's attributes, ...), whether or not a record has a
    # value; None when unknown. Mappings are checked against it.
    attributes: frozenset[str] | None = None
    # those of them whose value is a list (LDAP multi_valued)
    multi_valued: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Account:
    """One account as a target holds it, flattened to the mapping's attribute paths.

    `attrs` maps each managed target path (e.g. "name.givenName",
    "emails[0].value", "active") to the value the target returned (None when
    absent). `raw` keeps the target's own document for targets that need it
    to build a full replacement (PUT) or a list-valued PATCH.
    """
    id: str
    attrs: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def active(self) -> bool:
        value = self.attrs.get(ACTIVE, True)
        if value is True:
            return True  # most accounts: no need to format the value to know
        return value is not False and str(value).lower() != "false"


def with_written(account: Account, write_only: Iterable[str],
                 written: Mapping[str, Any] | None) -> Account:
    """The account with each write-only path at the value this tool last wrote to it.

    The target cannot show these paths, so the last write is all there is to
    know: a path never written is None (any wanted value differs, so it is
    written once), and `active` never written is False — not known to be
    enabled, so a leaver is disabled only once this tool has enabled them.
    """
    paths = frozenset(write_only)
    if not paths:
        return account
    written = written or {}
    attrs = {**account.attrs, **{p: written.get(p) for p in paths if p != ACTIVE}}
    if ACTIVE in paths:
        attrs[ACTIVE] = written.get(ACTIVE, False)
    return Account(id=account.id, attrs=attrs, raw=account.raw)


@dataclass(frozen=True)
class Change:
    before: Any
    after: Any

    def to_dict(self) -> dict:
        return {"from": self.before, "to": self.after}


@dataclass(frozen=True)
class PlanItem:
    id: str
    target: str
    op: str
    identity: str | None
    account_id: str | None
    changes: Mapping[str, Change]
    reason: str
    status: str = PENDING
    error: str | None = None
    # create items: the full attribute set to send, and the attribute/value
    # pairs to look the account up by if the create's outcome is unknown.
    attrs: Mapping[str, Any] = field(default_factory=dict)
    lookup: tuple[tuple[str, Any], ...] = ()
    # who the identity is to a person when its key is an opaque id: the
    # source's label (an LDAP DN), else the account's correlation value
    person: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id, "target": self.target, "op": self.op,
            "identity": self.identity, "person": self.person, "account_id": self.account_id,
            "changes": {k: c.to_dict() for k, c in self.changes.items()},
            "reason": self.reason, "status": self.status, "error": self.error,
        }


@dataclass(frozen=True)
class TargetSummary:
    accounts: int
    counts: Mapping[str, int]
    unmanaged: int                    # accounts that match nobody in the source
    blocked: bool = False
    block_reason: str | None = None
    held: int = 0                     # accounts of held people (rejected, not started yet): left alone
    # with policy.unmanaged = "report" or "disable": the accounts that match nobody,
    # each {"account_id", "person", "active", "kept"}; None when the policy is "ignore"
    orphans: tuple[Mapping[str, Any], ...] | None = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"accounts": self.accounts}
        for op in OPS:
            out[op] = self.counts.get(op, 0)
        out["unmanaged"] = self.unmanaged
        out["held"] = self.held
        out["blocked"] = self.blocked
        out["block_reason"] = self.block_reason
        if self.orphans is not None:
            out["orphans"] = [dict(o) for o in self.orphans]
        return out


@dataclass(frozen=True)
class Link:
    """An identity known to own an account on a target (found by correlation)."""
    target: str
    identity: str
    account_id: str


@dataclass(frozen=True)
class Plan:
    plan_id: str
    created_at: str
    status: str
    identities: int
    rejected: tuple[Rejected, ...]
    targets: Mapping[str, TargetSummary]
    items: tuple[PlanItem, ...]
    # accounts correlated to an identity with nothing to change: recorded as
    # links when the plan is applied, so later runs need not correlate again.
    adopt: tuple[Link, ...] = ()
    # the source section's extra parts: "sources" (counts per source),
    # "upcoming" (dated changes ahead, each with the targets whose scope they
    # are in), "unmatched" (records only a non-authoritative source has)
    source_info: Mapping[str, Any] = field(default_factory=dict)
    # the day the plan was made for (`plan --as-of`, YYYY-MM-DD); None: the day it was made
    as_of: str | None = None

    def to_dict(self) -> dict:
        out = {
            "plan_id": self.plan_id, "created_at": self.created_at, "status": self.status,
            "source": {"identities": self.identities,
                       "rejected": [r.to_dict() for r in self.rejected],
                       **self.source_info},
            "targets": {n: s.to_dict() for n, s in self.targets.items()},
            "items": [i.to_dict() for i in self.items],
        }
        if self.as_of is not None:
            out["as_of"] = self.as_of
        return out


def normalize(value: Any, case_insensitive: bool | str = False) -> Any:
    """The form two values are compared in: blanks are None, strings trimmed.

    `case_insensitive` is False, True (case folded) or FOLD (case folded and
    accents stripped: NFKD, combining marks dropped).
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
        if case_insensitive == FOLD:
            value = "".join(c for c in unicodedata.normalize("NFKD", value)
                            if not unicodedata.combining(c))
        return value.casefold() if case_insensitive else value
    # source values are text: a target's true or 3 equals the source's "true" or "3"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [normalize(v, case_insensitive) for v in value]
        return tuple(sorted((i for i in items if i is not None), key=repr)) or None
    if isinstance(value, dict) and set(value) <= {"value", "display", "primary", "type"} and "value" in value:
        # SCIM multi-valued entries ({"value": x}) compare as their value
        return normalize(value["value"], case_insensitive)
    return value


def same_value(a: Any, b: Any, case_insensitive: bool | str = False) -> bool:
    if a.__class__ is str and b.__class__ is str and a == b:
        return True  # the same text normalizes alike (most values of an unchanged account)
    return normalize(a, case_insensitive) == normalize(b, case_insensitive)
