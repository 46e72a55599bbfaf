"""Which connectors the suite can run, and the testkit of each."""

from __future__ import annotations

import importlib.util

from .testkit import Testkit, load_testkit


def _registry():
    if importlib.util.find_spec("provisioner.connectors") is None:
        return None
    from .. import connectors
    return connectors


def testkit_types() -> list[str]:
    """Every installed connector type that names a testkit (built-in and external alike)."""
    registry = _registry()
    if registry is not None:
        return [t for t, c in registry.connectors().items() if c.testkit]
    from importlib import resources
    return sorted(p.name[:-3] for p in resources.files("provisioner.testing.kits").iterdir()
                  if p.name.endswith(".py") and not p.name.startswith("_"))


def testkit_for(type_: str) -> Testkit:
    registry = _registry()
    if registry is not None:
        reference = registry.connector(type_).testkit
        if not reference:
            raise LookupError(f"connector {type_!r} names no testkit (Connector.testkit)")
    else:
        reference = f"provisioner.testing.kits.{type_}:testkit"
    kit = load_testkit(reference)
    if kit.type != type_:
        raise LookupError(f"the testkit {reference} is for {kit.type!r}, not {type_!r}")
    return kit
