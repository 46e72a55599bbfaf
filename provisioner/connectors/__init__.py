"""The connector registry: every target type, built-in or from another package, found
through the "provisioner.connectors" entry-point group.

A connector is one `Connector` object named by an entry point whose name is its type:

    [project.entry-points."provisioner.connectors"]
    mytype = "my_package:connector"

Importing the object must stay cheap (its settings model, no HTTP client, no emulator):
the target class, the emulator and the demo are named as "module:attr" strings and
imported when they are used. The core asks this module, never a vendor's by name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..target import Target
    from ..target_settings import SandboxSettingsBase, TargetSettingsBase

GROUP = "provisioner.connectors"


def load(reference: str) -> Any:
    """The object a "module:attr" string names."""
    module, _, attr = reference.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class SandboxSpec:
    settings: type[SandboxSettingsBase]     # the keys of [sandbox.<type>]
    build: str                              # "module:function": (sandbox settings) -> Emulator, not started
    demo: str | None = None                 # "module:function": (secret writer) -> DemoTarget


@dataclass(frozen=True)
class Connector:
    type: str                               # the `type = "..."` of [targets.NAME]
    summary: str                            # one line for `provisioner connectors`
    settings: type[TargetSettingsBase]      # its `type` field is Literal[<type>]
    target: str                             # "module:Class" of the Target subclass
    open: Callable[[str, Any, list[str]], Target]   # (target name, settings, paths) -> Target
    default_mapping: str | None = None      # resource file name in the package, e.g. "mapping.toml"
    docs: str | None = None                 # resource file name in the package, e.g. "README.md"
    sandbox: SandboxSpec | None = None      # the emulator, when the package ships one
    testkit: str | None = None              # "module:function" for the conformance suite

    def target_class(self) -> type[Target]:
        return load(self.target)

    @property
    def package(self) -> str:
        """The package the files named by default_mapping and docs are in: the one that
        defines the settings model (a module of it, or its __init__)."""
        import sys
        module = self.settings.__module__
        return module if hasattr(sys.modules[module], "__path__") else module.rpartition(".")[0]

    def resource(self, name: str) -> Any:
        """A file shipped in the connector's package (importlib.resources Traversable)."""
        from importlib.resources import files
        return files(self.package) / name

    def mapping_file(self) -> Any | None:
        """The default mapping the package ships (a Traversable), or None when it names none."""
        return self.resource(self.default_mapping) if self.default_mapping else None


@lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, Connector], dict[str, str], dict[str, str]]:
    """(type -> Connector, type -> why it could not be loaded, type -> distribution name)."""
    found: dict[str, Connector] = {}
    broken: dict[str, str] = {}
    origin: dict[str, str] = {}
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        if point.name in found or point.name in broken:
            continue   # the same distribution seen twice on sys.path: the first one wins
        dist = point.dist.name if point.dist is not None else "?"
        origin[point.name] = dist
        try:
            conn = point.load()
        except Exception as exc:   # a third party's bug must not stop every command
            broken[point.name] = (f"connector {point.name!r} (from {dist}) cannot be loaded: "
                                  f"{type(exc).__name__}: {exc}")
            continue
        if not isinstance(conn, Connector):
            broken[point.name] = (f"connector {point.name!r} (from {dist}): {point.value} is not a "
                                  "provisioner.connectors.Connector")
        elif conn.type != point.name:
            broken[point.name] = (f"connector {point.name!r} (from {dist}): its entry point name must "
                                  f"equal its type, which is {conn.type!r}")
        else:
            found[point.name] = conn
    return found, broken, origin


def connectors() -> dict[str, Connector]:
    """Every connector that loaded, by type, sorted by type."""
    return _registry()[0]


def broken() -> dict[str, str]:
    """Each connector that did not load: the sentence saying why."""
    return _registry()[1]


def origin(kind: str) -> str:
    """The distribution that registered this type."""
    return _registry()[2].get(kind, "?")


def connector(kind: str) -> Connector:
    """The connector of this type; ConfigError naming the known types otherwise."""
    found, failed, _ = _registry()
    if kind in found:
        return found[kind]
    if kind in failed:
        raise ConfigError(failed[kind])
    raise ConfigError(f"unknown target type {kind!r} (known: {', '.join(found)})")
