"""Shared fixtures. The scim2-server launcher lives in provisioner/sandbox/scim_server.py."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from provisioner.sandbox.scim_server import ScimServer, start_scim_server
from scripted_server import ScriptedServer

SCIM_TOKEN = "test-bearer-token-5f1c2a"


@pytest.fixture(autouse=True)
def _secrets_forgotten_after_each_test():
    """Redaction knows every secret this process has resolved, for the process's life. In a
    test session that means one test's secret (e.g. "t" * 12) would redact another test's
    text; each test starts from what was known before it."""
    from provisioner import secrets
    known = set(secrets._known)
    yield
    with secrets._lock:
        secrets._known.clear()
        secrets._known.update(known)


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


def _emulators(build):
    """A factory fixture's body: yields start(...) -> build(...) started on a free 127.0.0.1
    port; every emulator started is stopped at the end."""
    started = []

    def start(*args, **kwargs):
        emulator = build(*args, **kwargs).start()
        started.append(emulator)
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()


@pytest.fixture
def onecloud_factory():
    """start(options=None, faults=None) -> a running OneCloudEmulator on a free 127.0.0.1 port."""
    from provisioner.connectors.onecloud.emulator import OneCloudEmulator, OneCloudOptions

    def build(options=None, faults=None, **kwargs):
        options = options or OneCloudOptions(client_secret=ONECLOUD_SECRET, tenant=ONECLOUD_TENANT)
        return OneCloudEmulator(options, faults, **kwargs)

    yield from _emulators(build)


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


@pytest.fixture
def hook():
    """A webhook endpoint on 127.0.0.1 that records what it is sent."""
    with ScriptedServer() as server:
        yield server


def bodies(server) -> list[dict]:
    return [r.json() for r in server.requests]


# --- PostgreSQL ----------------------------------------------------------------
# Tests get a throwaway database of their own on the local server, created here
# and dropped at the end; no other database is touched. Without a server they
# are skipped loudly, unless PROVISIONER_TEST_PG=required (set by .ci/run).

PG_ADMIN = os.environ.get("PROVISIONER_TEST_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


def _pg_admin():
    import psycopg
    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


@contextmanager
def throwaway_pg_database(what: str, prefix: str) -> Iterator[str]:
    """The SQLAlchemy URL of a database made for `what` (e.g. "POSTGRESQL TESTS"), dropped
    afterwards; no server fails the test under PROVISIONER_TEST_PG=required, else skips it."""
    try:
        admin = _pg_admin()
    except Exception as exc:
        reason = f"no PostgreSQL server reachable ({PG_ADMIN}): {type(exc).__name__}: {exc}"
        if os.environ.get("PROVISIONER_TEST_PG") == "required":
            pytest.fail(f"PROVISIONER_TEST_PG=required but {reason}")
        pytest.skip(f"SKIPPING {what}: {reason}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    info = admin.info
    try:
        yield f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_database():
    """The SQLAlchemy URL of a database created for this test session."""
    with throwaway_pg_database("POSTGRESQL TESTS", "provisioner_test") as url:
        yield url


@pytest.fixture
def pg_url(pg_database):
    """The session database, emptied (schema and all) for this test."""
    import psycopg
    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh state-DB URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


CLIENTTRACK_SUBSCRIPTION = "test-ct-subscription-5b2a"
CLIENTTRACK_API_KEY = "test-ct-apikey-77c0"


@pytest.fixture
def clienttrack_factory():
    """start(options=None, **option_overrides) -> a running ClientTrackEmulator on a free 127.0.0.1 port."""
    from provisioner.connectors.clienttrack.emulator import ClientTrackEmulator, ClientTrackOptions

    def build(options=None, faults=None, **overrides):
        options = options or ClientTrackOptions(subscription_key=CLIENTTRACK_SUBSCRIPTION,
                                                api_key=CLIENTTRACK_API_KEY, **overrides)
        return ClientTrackEmulator(options, faults)

    yield from _emulators(build)


@pytest.fixture
def clienttrack(clienttrack_factory):
    """A fresh, empty ClientTrack emulator accepting the CLIENTTRACK_* keys."""
    return clienttrack_factory()


CCC_SECRET = "test-ccc-secret-4b7a"
CCC_CLIENT_ID = "4242"
CCC_USERNAME = "ws-provisioner"


@pytest.fixture
def ccc_factory():
    """start(options=None, faults=None) -> a running CccEmulator on a free 127.0.0.1 port."""
    from provisioner.connectors.ccc.emulator import CccEmulator, CccOptions

    def build(options=None, faults=None, **kwargs):
        options = options or CccOptions(client_id=CCC_CLIENT_ID, username=CCC_USERNAME, secret_key=CCC_SECRET)
        return CccEmulator(options, faults, **kwargs)

    yield from _emulators(build)


@pytest.fixture
def ccc(ccc_factory):
    """A fresh CCC emulator accepting CCC_CLIENT_ID / CCC_USERNAME / CCC_SECRET."""
    return ccc_factory()


def assert_nowhere(secrets, *, db_file, log_text: str, plan) -> None:
    """None of `secrets` (e.g. the passwords an emulator was sent) is in the log text, the plan
    (its document and the create items' attributes) or the bytes of the state DB file."""
    stored = Path(db_file).read_bytes()
    text = log_text + repr(plan.to_dict()) + repr([i.attrs for i in plan.items])
    for secret in secrets:
        assert secret not in text and secret.encode() not in stored


YCC_USER, YCC_PASSWORD = "api@test.ytel", "test-ycc-password-8e3d"


@pytest.fixture
def ycc_factory():
    """start(faults=None, **options) -> a running Ytel YCC emulator (AMS token endpoint included)
    accepting YCC_USER / YCC_PASSWORD, seeded with its template agent "9999"."""
    from provisioner.connectors.ytel.ycc_emulator import YccEmulator, YccOptions

    def build(faults=None, **options):
        return YccEmulator(YccOptions(username=YCC_USER, password=YCC_PASSWORD, **options), faults)

    yield from _emulators(build)


@pytest.fixture
def ycc(ycc_factory):
    return ycc_factory()
