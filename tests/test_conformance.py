"""The conformance suite (provisioner/testing/conformance.py) for every installed connector
that names a testkit: the built-in ones and the example external one (tests/example_connector)."""

from provisioner.testing.conformance import *  # noqa: F401,F403  (the cases and their fixtures)
