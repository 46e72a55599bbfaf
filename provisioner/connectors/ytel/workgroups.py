"""Ytel work-group membership as one user attribute, `workgroups` (seed 002, "Work groups").

Vendor facts and the decisions taken on them:
- `GET /ams/v3/workgroup` lists the groups; each is assumed to carry its members
  as `userIds` (clientIds), as the create body does. A group listed without
  `userIds` is read on its own with `GET /ams/v3/workgroup/{groupName}`.
- `POST /ams/v3/workgroup {groupName, userIds}` adds users to an existing group.
  The same call creates a group that does not exist, so a wanted group that is
  not in Ytel is a conflict at plan time: provisioner never creates groups.
- The seed documents "remove users" as that very same POST and body, which
  cannot be right. Removal is therefore sent only to `workgroup_remove_path`
  (POST, same body) when an account owner has confirmed one; without it, the
  plan holds a manual item telling a person whom to take out of which group.
- Only the groups named in the target's `workgroups` setting are read and
  changed: membership in any other group is neither shown nor touched.

The attribute's value is the managed group names a user is in, sorted and
joined with ", " (like roles); None when in none of them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable
from urllib.parse import quote

from ...errors import ConfigError, TargetError
from ..onecloud.target import roles_list, roles_text

WORKGROUPS = "workgroups"
WORKGROUP = "/ams/v3/workgroup"

Call = Callable[..., list]   # (method, path, action, body=None) -> the envelope's payload


class WorkGroups:
    """Managed work groups of one Ytel account: who is in which, and the calls that change it."""

    def __init__(self, target: str, managed: Iterable[str], remove_path: str | None, call: Call):
        self.target = target
        self.managed = tuple(dict.fromkeys(managed))
        if not self.managed:
            raise ConfigError(f"{target}: the mapping sets workgroups, so list the work groups "
                              "provisioner may add people to and remove them from in the target's "
                              "`workgroups` setting, e.g. workgroups = [\"Support\"]")
        self.remove_path = remove_path
        self._call = call
        self._members: dict[str, set[str]] | None = None   # managed group that exists -> clientIds

    def read(self) -> None:
        """(Re)read membership of the managed groups: once per list of the accounts."""
        listed = {str(g.get("groupName")): g for g in self._call("GET", WORKGROUP, "list work groups")
                  if isinstance(g, dict) and g.get("groupName")}
        members: dict[str, set[str]] = {}
        for name in self.managed:
            group = listed.get(name)
            if group is None:
                continue
            if not isinstance(group.get("userIds"), list):
                found = self._call("GET", f"{WORKGROUP}/{quote(name, safe='')}", "read work group")
                group = found[0] if found else {}
            members[name] = {str(u) for u in group.get("userIds") or []}
        self._members = members

    def of(self, client_id: str) -> str | None:
        """The managed groups a user is in, as the attribute's text."""
        if self._members is None:
            self.read()
        return roles_text([g for g, ids in self._members.items() if client_id in ids])

    def problem(self, wanted: Any) -> str | None:
        """A sentence when a wanted group is not managed or does not exist in Ytel."""
        names = roles_list(wanted) if wanted is not None else []
        unmanaged = [n for n in names if n not in self.managed]
        if unmanaged:
            return (f"work group {', '.join(map(repr, unmanaged))} is not in {self.target}'s "
                    f"workgroups setting ({', '.join(self.managed)}): add it there, or correct "
                    "the mapping")
        if self._members is None:
            return None
        missing = [n for n in names if n not in self._members]
        if missing:
            return (f"work group {', '.join(map(repr, missing))} does not exist in Ytel: create it "
                    "there first (provisioner adds people to work groups, it never creates one)")
        return None

    def partial(self, have: Any, want: Any) -> tuple[Any, str] | None:
        """Without a removal call, only the additions of a change can be made."""
        before, after = set(roles_list(have or [])), set(roles_list(want or []))
        gone = sorted(before - after)
        if self.remove_path or not gone:
            return None
        return roles_text(before | after), (f"remove the user from Ytel work group {', '.join(map(repr, gone))} by "
                       "hand: the Ytel API documents no call that removes users from a work group "
                       f"(set workgroup_remove_path for target {self.target} once Ytel confirms one)")

    def change(self, client_id: str, have: Any, want: Any) -> None:
        before, after = set(roles_list(have or [])), set(roles_list(want or []))
        if self._members is None:
            self.read()
        missing = sorted(after - before - set(self._members))
        if missing:
            # the add call would create the group: never done behind a person's back
            raise TargetError(f"{self.target}: work group {', '.join(map(repr, missing))} does not "
                              "exist in Ytel; create it there first", retryable=False)
        for name in sorted(after - before):
            self._call("POST", WORKGROUP, f"add to work group {name!r}",
                       {"groupName": name, "userIds": [client_id]})
            self._note(name, client_id, True)
        gone = sorted(before - after)
        if gone and not self.remove_path:
            raise TargetError(f"{self.target}: cannot remove the user from work group "
                              f"{', '.join(map(repr, gone))}: no workgroup_remove_path is set; "
                              "make a new plan", retryable=False)
        for name in gone:
            self._call("POST", self.remove_path, f"remove from work group {name!r}",
                       {"groupName": name, "userIds": [client_id]})
            self._note(name, client_id, False)

    def _note(self, name: str, client_id: str, member: bool) -> None:
        # keeps the fresh read before the next item's change true without a re-read
        if self._members is not None and name in self._members:
            (self._members[name].add if member else self._members[name].discard)(client_id)
