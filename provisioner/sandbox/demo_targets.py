"""The connectors' emulators that `provisioner demo` runs beside the SCIM directory.

A connector joins the demo by writing a factory in its emulator module and
naming it as `demo` in its SandboxSpec:

    def demo_target(secret: SecretWriter) -> DemoTarget: ...

The factory builds its emulator (not started: the demo starts it on a free
127.0.0.1 port), pre-seeds it as the vendor would hold accounts before the
first run, and returns the `[targets.NAME]` table (a function of the started
emulator's base URL) and, when the demo maps other attributes than the
connector's default mapping does, its own mapping text. `secret(label, value)` writes a
throwaway credential to an owner-only file and returns its `file:` reference
for the config. The demo's HR export has the columns in `SAMPLE_COLUMNS`;
scope the mapping to `department eq "Support"` like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .server import Emulator

SecretWriter = Callable[[str, str], str]
SAMPLE_COLUMNS = ("employee_id", "given_name", "family_name", "email", "department", "title",
                  "team", "role", "timezone", "work_phone", "status")


@dataclass
class DemoTarget:
    name: str                          # the target's name in the demo config (its type)
    label: str                         # how the demo introduces it ("... emulator")
    emulator: Emulator
    config: Callable[[str], str]       # base_url -> the TOML text of [targets.NAME], mapping included
    # written to mappings/NAME.toml; None: the connector's default mapping
    mapping: str | None = None
    # link data of the target after the first apply -> a line the demo prints (None: nothing)
    note: Callable[[dict[str, dict]], str | None] | None = None


def demo_targets(secret: SecretWriter) -> list[DemoTarget]:
    """Each connector's demo target, in the registry's order (imported only when the demo runs),
    its mapping filled in with the connector's default one where it brings none."""
    from ..connectors import connectors, load
    made = []
    for conn in connectors().values():
        if conn.sandbox and conn.sandbox.demo:
            target = load(conn.sandbox.demo)(secret)
            if target.mapping is None:
                target.mapping = conn.mapping_file().read_text(encoding="utf-8")
            made.append(target)
    return made
