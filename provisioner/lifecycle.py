"""The rest of an account's life, for the planner: the delete after a grace period, drift
on attributes a person may own on the target, and accounts nobody owns (orphans).

Pure like the planner: the caller passes the day (`today`), what this tool disabled and
when, and what it last wrote. See docs/lifecycle.md.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterable, Mapping, Sequence

from .model import ACTIVE, Account, Change, same_value

_MISSING = object()


def grace_left(disabled_on: date | None, delete_after_days: int | None, today: date | None) -> int | None:
    """Days until an account this tool disabled on `disabled_on` may be deleted: 0 or less
    means now; None when it is never deleted (deletes off, or not disabled by this tool)."""
    if disabled_on is None or delete_after_days is None or today is None:
        return None
    return delete_after_days - (today - disabled_on).days


def delete_reason(key: str | None, disabled_on: date, delete_after_days: int, today: date) -> str:
    days = (today - disabled_on).days
    who = key or "the account"
    return (f"{who} was disabled by this tool on {disabled_on.isoformat()}, {days} day"
            f"{'' if days == 1 else 's'} before {today.isoformat()}: past delete_after_days = "
            f"{delete_after_days}")


def drift_of(mapping, want: Mapping[str, Any], account: Account, last: Mapping[str, Any] | None,
             skip: Iterable[str] = ()) -> tuple[set[str], dict[str, Change], dict[str, Change]]:
    """The paths a diff must leave alone because the target's value drifted and the
    mapping adopts or alerts on it, the drift to report {path: Change(ours, theirs)}, and
    the drift an update reverts (on_drift = "revert" written down) in the same shape.

    Drift: the target's value differs from what this tool last wrote (`last`) while the
    source still wants that value. A path with nothing written yet is not drift (it is
    diffed as before, and the value is recorded once written); a source change is never
    held back (the source moved, so the diff writes it)."""
    tracked = mapping.drift_tracked
    if not tracked or not last:
        return set(), {}, {}
    leave, report, reverted = set(), {}, {}
    for path in tracked:
        if path == ACTIVE or path in skip or path not in want:
            continue
        ours = last.get(path, _MISSING)
        if ours is _MISSING:
            continue
        ci = mapping.case_insensitive(path)
        theirs = account.attrs.get(path)
        if same_value(theirs, ours, ci) or not same_value(want[path], ours, ci):
            continue
        policy = mapping.on_drift(path)
        if policy == "revert":
            reverted[path] = Change(ours, theirs)
            continue
        leave.add(path)
        if policy == "alert":
            report[path] = Change(ours, theirs)
    return leave, report, reverted


def revert_reason(reason: str, target: str, reverted: Mapping[str, Change]) -> str:
    """An update's reason, saying which of its changes put back a value changed on the target."""
    parts = [f"{path} was changed on {target} to {c.after!r}" for path, c in reverted.items()]
    return f"{reason}; reverts drift ({'; '.join(parts)}; on_drift = \"revert\")"


def drift_reason(target: str, changes: Mapping[str, Change], account: Account) -> str:
    parts = [f"{path} was changed on {target}: ours {c.before!r}, theirs {c.after!r}"
             for path, c in changes.items()]
    meta = account.raw.get("meta") if isinstance(account.raw, Mapping) else None
    modified = meta.get("lastModified") if isinstance(meta, Mapping) else None
    when = f" (last modified {modified})" if modified else ""
    return "; ".join(parts) + when + "; on_drift = \"alert\": left as it is, never applied"


def kept(account: Account, keep: Mapping[str, Sequence[str]]) -> str | None:
    """The keep rule an account matches ("userName ~ svc-.*"), or None."""
    for path, patterns in keep.items():
        value = account.attrs.get(path)
        if value is None:
            continue
        text = str(value)
        for pattern in patterns:
            if re.fullmatch(pattern, text):
                return f"{path} ~ {pattern}"
    return None


def orphan_entries(accounts: Sequence[Account], orphan_ids: set[str], mapping,
                   keep: Mapping[str, Sequence[str]]) -> tuple[dict, ...]:
    """What a plan says about each orphan, in the target's order."""
    out = []
    for account in accounts:
        if account.id not in orphan_ids:
            continue
        value = account.attrs.get(mapping.correlate[0])
        out.append({"account_id": account.id, "person": value if isinstance(value, str) else None,
                    "active": account.active, "kept": kept(account, keep)})
    return tuple(out)
