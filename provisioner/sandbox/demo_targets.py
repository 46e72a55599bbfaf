"""The vendor emulators that `provisioner demo` runs beside OneCloud and the SCIM directory.

A vendor joins the demo by writing a factory in its emulator module and
listing the module in `FACTORIES`:

    def demo_target(secret: SecretWriter) -> DemoTarget: ...

The factory builds its emulator (not started: the demo starts it on a free
127.0.0.1 port), pre-seeds it as the vendor would hold accounts before the
first run, and returns the `[targets.NAME]` table (a function of the started
emulator's base URL) and the mapping text. `secret(label, value)` writes a
throwaway credential to an owner-only file and returns its `file:` reference
for the config. The demo's HR export has the columns in `SAMPLE_COLUMNS`;
scope the mapping to `department eq "Support"` like the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from .server import Emulator

SecretWriter = Callable[[str, str], str]
SAMPLE_COLUMNS = ("employee_id", "given_name", "family_name", "email", "department", "title",
                  "team", "role", "timezone", "work_phone", "status")


@dataclass
class DemoTarget:
    name: str                          # the target's name in the demo config, e.g. "ytel"
    label: str                         # how the demo introduces it, e.g. "Ytel AMS emulator"
    emulator: Emulator
    config: Callable[[str], str]       # base_url -> the TOML text of [targets.NAME], mapping included
    mapping: str                       # written to mappings/NAME.toml


def _vendor(module: str) -> Callable[[SecretWriter], DemoTarget]:
    """sandbox/<module>.py's demo_target, imported only when the demo runs (it imports this module)."""
    def factory(secret: SecretWriter) -> DemoTarget:
        return importlib.import_module(f"{__package__}.{module}").demo_target(secret)
    return factory


FACTORIES: list[Callable[[SecretWriter], DemoTarget]] = [
    _vendor("ccs"),
    _vendor("clienttrack"),
    _vendor("ccc"),
    _vendor("ytel"),
    _vendor("ytel_ycc"),
]
