"""The SCIM connector's testkit: scim2-server, an independent SCIM 2.0 implementation."""

from __future__ import annotations

from ...testing.testkit import Testkit

TOKEN = "conformance-scim-token-3c9d"
# SCIM has no default mapping (the README's mappings/directory.toml is an example): this one
# maps the suite's source to the core User attributes
MAPPING = """
scope = 'department eq "Support"'
correlate = ["userName"]

[attributes]
userName = "email"
"name.givenName" = { from = "given_name" }
"name.familyName" = { from = "family_name" }
"emails[0].value" = { from = "email" }
title = { from = "title" }
active = { from = "status", equals = "active" }
"""


def testkit() -> Testkit:
    from ...sandbox.scim_server import start_scim_server
    return Testkit(
        type="scim",
        start=lambda: start_scim_server(TOKEN),
        settings=lambda url: {"base_url": url, "token": "env:CONFORMANCE_SCIM_TOKEN", "page_size": 2},
        env={"CONFORMANCE_SCIM_TOKEN": TOKEN},
        mapping=MAPPING,
        create_request=("POST", r"/Users\Z"),
        page_size=2)
