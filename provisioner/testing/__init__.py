"""The conformance suite every connector passes, shipped so an external connector can run it
too: a connector's testkit (testkit.py) says how to reach its emulator; conformance.py holds
the cases. docs/connectors.md says how to run it."""

from .testkit import Testkit, standard_row

__all__ = ["Testkit", "standard_row"]
