"""What a connector gives the conformance suite: a `Testkit`.

A connector names a function returning one (Connector.testkit = "module:function").
The suite starts the kit's emulator, puts its own proxy in front of it (the proxy
injects the 429s and 5xx and counts the requests, so a kit needs no fault knobs of
its own), writes a config directory whose one target is the kit's settings, and
drives the target both directly and through the real CLI.

    def testkit() -> Testkit:
        return Testkit(
            type="mytype",
            start=lambda: MyEmulator(token="kit-token").start(),
            settings=lambda url: {"base_url": url, "token": "env:MYTYPE_TOKEN"},
            env={"MYTYPE_TOKEN": "kit-token"},
            mapping=(files(__package__) / "mapping.toml").read_text(encoding="utf-8"),
            create_request=("POST", r"/users\\Z"),
            page_size=2)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

# The columns of the source the suite writes (an HR export, as the shipped mappings read it).
COLUMNS = ("employee_id", "given_name", "family_name", "email", "department", "title", "work_phone",
           "status", "timezone", "mobile_phone", "role")


class Server(Protocol):
    """A started emulator: anything with a base URL and a stop()."""
    base_url: str

    def stop(self) -> None: ...


def standard_row(n: int) -> dict[str, str]:
    """Person number n of the suite's source: unique key, names and e-mail; active, in Support."""
    return {"employee_id": f"C{n:04d}", "given_name": f"Conf{n}", "family_name": f"Person{n}",
            "email": f"conf.person{n}@example.com", "department": "Support", "title": "Agent",
            "work_phone": f"+1555010{n:04d}", "status": "active", "timezone": "UTC",
            "mobile_phone": "", "role": "Agent"}


@dataclass(frozen=True)
class Testkit:
    """How the conformance suite runs one connector against its emulator."""
    type: str
    # a fresh emulator, started on 127.0.0.1 (scim2-server, an Emulator subclass, ...)
    start: Callable[[], Server]
    # a base URL (the suite's proxy in front of the server, with the server's path) -> the
    # keys of [targets.NAME] except `type` and `mapping`; secrets as "env:NAME" references
    settings: Callable[[str], dict[str, Any]]
    # the mapping, TOML text (usually the connector's default mapping)
    mapping: str
    # the values of the env: references in settings(); the suite checks none is ever shown
    env: Mapping[str, str] = field(default_factory=dict)
    # the create request as (method, path regex searched in the URL path): counted by the proxy
    create_request: tuple[str, str] | None = None
    # source row n (the columns the mapping reads); standard_row fits the shipped mappings
    row: Callable[[int], dict[str, str]] = standard_row
    # source columns the update case changes, each value a format string taking {n}
    update: Mapping[str, str] = field(default_factory=lambda: {"family_name": "Changed{n}"})
    # the path accounts are correlated by (None: the mapping's first correlate entry)
    correlate: str | None = None
    # accounts on one page of the list request as these settings make it; None: one answer holds all
    page_size: int | None = None
    # put the account of a source row into the server by hand, as an administrator would:
    # needed for a target that cannot create; when given, the paging case fills pages with it
    seed: Callable[[Server, dict[str, str]], None] | None = None
    # False for an API that accepts a second account with the same login (the 409 case is skipped)
    refuses_duplicates: bool = True


def load_testkit(reference: str) -> Testkit:
    """The testkit a "module:function" reference returns."""
    module, _, attr = reference.partition(":")
    kit = getattr(importlib.import_module(module), attr)()
    if not isinstance(kit, Testkit):
        raise TypeError(f"{reference} returned {type(kit).__name__}, not a provisioner.testing.Testkit")
    return kit


def toml_table(values: Mapping[str, Any]) -> str:
    """`key = value` lines for a TOML table (str, bool, numbers, lists, inline tables)."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in values.items())


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _value(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def default_mapping(kind: str) -> str:
    """The default mapping a connector ships (Connector.default_mapping), as text."""
    from ..connectors import connector
    mapping = connector(kind).mapping_file()
    if mapping is None:
        raise LookupError(f"connector {kind!r} ships no default mapping")
    return mapping.read_text(encoding="utf-8")
