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


ONECLOUD_SECRET = "test-onecloud-secret-9d1e"
ONECLOUD_TENANT = "test.cx.onecloud.com"


@pytest.fixture
def onecloud_factory():
    """start(options=None, faults=None) -> a running OneCloudEmulator on a free 127.0.0.1 port."""
    from provisioner.sandbox.onecloud import OneCloudEmulator, OneCloudOptions
    started = []

    def start(options=None, faults=None, **kwargs):
        options = options or OneCloudOptions(client_secret=ONECLOUD_SECRET, tenant=ONECLOUD_TENANT)
        emulator = OneCloudEmulator(options, faults, **kwargs).start()
        started.append(emulator)
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()


@pytest.fixture
def onecloud(onecloud_factory):
    """A fresh OneCloud emulator accepting client id "admin" with ONECLOUD_SECRET."""
    return onecloud_factory()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """One throwaway slapd for the session (provisioner/sandbox/slapd.py): 5,000 people, 20 AD users."""
    from provisioner.sandbox.slapd import start_slapd

    server = start_slapd(tmp_path_factory.mktemp("slapd"), people=5000, ad_people=20)
    try:
        yield server
    finally:
        server.stop()
