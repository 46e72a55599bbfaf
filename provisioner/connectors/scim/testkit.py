"""The SCIM connector's testkit: scim2-server, an independent SCIM 2.0 implementation."""

from __future__ import annotations

from ...testing.testkit import Testkit

TOKEN = "conformance-scim-token-3c9d"


def testkit() -> Testkit:
    from ...demo import DIRECTORY_MAPPING   # SCIM has no default mapping: the demo's directory one
    from ...sandbox.scim_server import start_scim_server
    return Testkit(
        type="scim",
        start=lambda: start_scim_server(TOKEN),
        settings=lambda url: {"base_url": url, "token": "env:CONFORMANCE_SCIM_TOKEN", "page_size": 2},
        env={"CONFORMANCE_SCIM_TOKEN": TOKEN},
        mapping=DIRECTORY_MAPPING,
        create_request=("POST", r"/Users\Z"),
        page_size=2)
