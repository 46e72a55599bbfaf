"""The CCS connector's testkit. CCS cannot create extensions: the suite seeds them in the
emulator, as an administrator makes them, and provisioner finds, updates, disables and
enables them. Its agent settings are write-only (no documented call reads them back)."""

from __future__ import annotations

from ...testing.testkit import Testkit, default_mapping, standard_row

TOKEN = "conformance-ccs-token-e5b7"
TENANT = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"


def _start():
    from .emulator import CcsEmulator, CcsOptions
    return CcsEmulator(CcsOptions(token=TOKEN, tenant_uuid=TENANT)).start()


def _row(n: int) -> dict[str, str]:
    # the extension comes from the source here, not from a OneCloud link
    return {**standard_row(n), "extension": str(3000 + n), "max_chats": "3"}


def _seed(server, row: dict[str, str]) -> None:
    server.add_extension(row["given_name"], row["family_name"], row["extension"])


def _mapping() -> str:
    text = default_mapping("ccs")
    text = text.replace('extension = { from = "links.onecloud.extension" }', 'extension = { from = "extension" }')
    text = text.replace('max_chats = { constant = "3" }', 'max_chats = { from = "max_chats" }')
    assert 'from = "extension"' in text and 'from = "max_chats"' in text, "the CCS default mapping changed"
    return text


def testkit() -> Testkit:
    return Testkit(
        type="ccs", start=_start,
        settings=lambda url: {"base_url": url, "token": "env:CONFORMANCE_CCS_TOKEN", "tenant_uuid": TENANT,
                              "signout_presence": "Sign Out"},
        env={"CONFORMANCE_CCS_TOKEN": TOKEN},
        mapping=_mapping(), row=_row, update={"max_chats": "4"}, seed=_seed)
