"""Which connectors the suite can run, and the testkit of each: the one its Connector names
(Connector.testkit), else, for a built-in connector, provisioner/testing/kits/<type>.py."""

from __future__ import annotations

from importlib import resources

from ..connectors import connectors
from .testkit import Testkit, load_testkit

_KITS = "provisioner.testing.kits"


def _built_in_kits() -> set[str]:
    return {p.name[:-3] for p in resources.files(_KITS).iterdir()
            if p.name.endswith(".py") and not p.name.startswith("_")}


def testkit_types() -> list[str]:
    """Every installed connector type that has a testkit, built-in and external alike."""
    kits = _built_in_kits()
    return [kind for kind, c in connectors().items() if c.testkit or kind in kits]


def testkit_for(kind: str) -> Testkit:
    from ..connectors import connector
    reference = connector(kind).testkit
    if not reference:
        if kind not in _built_in_kits():
            raise LookupError(f"connector {kind!r} names no testkit (Connector.testkit)")
        reference = f"{_KITS}.{kind}:testkit"
    kit = load_testkit(reference)
    if kit.type != kind:
        raise LookupError(f"the testkit {reference} is for {kit.type!r}, not {kind!r}")
    return kit
