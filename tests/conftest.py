"""Shared fixtures. The scim2-server launcher lives in provisioner/sandbox/scim_server.py."""

from __future__ import annotations

import pytest

from provisioner.sandbox.scim_server import ScimServer, start_scim_server

SCIM_TOKEN = "test-bearer-token-5f1c2a"


@pytest.fixture
def scim_server():
    """A fresh, empty scim2-server for this test (about 0.7 s to start), accepting SCIM_TOKEN."""
    server = start_scim_server(SCIM_TOKEN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def scim_server_factory():
    """start(token) -> ScimServer, for tests that need several servers; all stopped afterwards."""
    started: list[ScimServer] = []

    def start(token: str = SCIM_TOKEN) -> ScimServer:
        server = start_scim_server(token)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """One throwaway slapd for the session (provisioner/sandbox/slapd.py): 5,000 people, 20 AD users."""
    from provisioner.sandbox.slapd import start_slapd

    server = start_slapd(tmp_path_factory.mktemp("slapd"), people=5000, ad_people=20)
    try:
        yield server
    finally:
        server.stop()
