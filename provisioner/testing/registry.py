"""Which connectors the suite runs, and the testkit of each (Connector.testkit)."""

from __future__ import annotations

from ..connectors import connector, connectors
from .testkit import Testkit, load_testkit


def testkit_types() -> list[str]:
    """Every installed connector type that names a testkit, built-in and external alike."""
    return [kind for kind, c in connectors().items() if c.testkit]


def testkit_for(kind: str) -> Testkit:
    reference = connector(kind).testkit
    if not reference:
        raise LookupError(f"connector {kind!r} names no testkit (Connector.testkit)")
    kit = load_testkit(reference)
    if kit.type != kind:
        raise LookupError(f"the testkit {reference} is for {kit.type!r}, not {kind!r}")
    return kit
