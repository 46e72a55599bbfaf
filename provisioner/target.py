"""The interface every target implements, and the flattening they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

from .errors import TargetError
from .model import ACTIVE, Account
from .scim_paths import getter

CREATE, UPDATE, DISABLE, ENABLE, DELETE = "create", "update", "disable", "enable", "delete"
ALL_CAPABILITIES = frozenset({CREATE, UPDATE, DISABLE, ENABLE, DELETE})


class Target(ABC):
    """A system holding user accounts.

    Errors are provisioner.errors.TargetError (NotFound for a missing
    account, AlreadyExists for a create refused as a duplicate), each with a
    sentence a person can act on and never a secret.
    """

    name: str
    capabilities: frozenset[str]
    # the mapping's managed attribute paths; Account.attrs holds exactly these plus "active"
    paths: Sequence[str]
    # the keys of what link_data() returns; other mappings read them as links.<target>.<key>
    link_keys: frozenset[str] = frozenset()
    # attributes the target sets itself (top-level names, any case): no mapping may write one
    server_owned: frozenset[str] = frozenset()
    # paths every account must have: a plan leaving one without a value is a manual item
    required_paths: frozenset[str] = frozenset()
    # paths the target takes but never shows: planned against what this tool last wrote there
    write_only: frozenset[str] = frozenset()
    # paths the target shows but this tool may not write (a mapping naming one is refused)
    read_only: frozenset[str] = frozenset()
    # paths fixed once the account exists: a change follows the target's rename mode
    immutable: frozenset[str] = frozenset()
    # what a person does about a change to an immutable path; None: the planner's own sentence
    rename_hint: str | None = None
    # the vendor's documented request limits, what -> requests per second (`provisioner connectors`)
    rate_limits: Mapping[str, float] = {}

    # The planner's and executor's hooks. Each default is "nothing to add", so a connector
    # overrides only what its vendor needs and the engine calls every hook unconditionally.

    def validate(self, want: Mapping[str, Any]) -> str | None:
        """Why the account `want` describes cannot be sent (a manual item), or None."""
        return None

    def manual_create(self, key: str, want: Mapping[str, Any]) -> str | None:
        """For a target that cannot create: what a person does instead; None: the planner's sentence."""
        return None

    def partial_change(self, path: str, have: Any, want: Any) -> tuple[Any, str] | None:
        """For a change the target can make only in part: (what it can send, what a person does
        about the rest), or None when the change goes through whole."""
        return None

    def manual_delete(self, account: Account) -> str | None:
        """For a target that cannot delete (no DELETE in `capabilities`): what a person does once
        an account's grace period is over; None when disabled is final on this vendor (nothing
        is planned)."""
        return f"delete account {account.id} by hand: this target cannot delete accounts"

    def delete(self, account: Account) -> None:
        """Delete the account (DELETE in `capabilities`); NotFound when it is gone already."""
        raise TargetError(f"{self.name}: this target cannot delete accounts")

    def link_data(self, account: Account) -> dict | None:
        """What a create taught this tool that the link must keep (e.g. an assigned extension)."""
        return None

    @abstractmethod
    def list_accounts(self) -> list[Account]:
        """Every account, all pages read."""

    @abstractmethod
    def get_account(self, account_id: str) -> Account | None:
        """The account, or None when the target says it does not exist."""

    @abstractmethod
    def find_accounts(self, path: str, value: Any) -> list[Account]:
        """Accounts whose attribute at `path` equals `value` (correlation after a 409, resume)."""

    @abstractmethod
    def create(self, attrs: Mapping[str, Any]) -> Account:
        """Create from flat {path: value} (may include "active"); AlreadyExists on a duplicate."""

    @abstractmethod
    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        """Set each path to its value (None removes it); `account` is the freshly read state."""

    @abstractmethod
    def check(self) -> str:
        """Authenticate and describe in one line what was reached; TargetError otherwise."""

    def seconds_per_request(self, concurrency: int) -> float | None:
        """What a request costs on average while `concurrency` of them run at once,
        measured on this target (for the apply estimate); None when it cannot tell."""
        return None

    def close(self) -> None:
        pass

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def flatten(doc: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """{path: value} for each managed path plus "active" (None when absent)."""
    return _flattener(tuple(paths))(doc)


@lru_cache(maxsize=64)
def _flattener(paths: tuple[str, ...]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    # the paths are parsed once per mapping, not once per account
    getters = tuple((path, getter(path)) for path in (*paths, ACTIVE))

    def flat(doc: Mapping[str, Any]) -> dict[str, Any]:
        return {path: get(doc) for path, get in getters}
    return flat
