"""The OneCloud connector's testkit: its emulator (OAuth client credentials, SCIM paging)."""

from __future__ import annotations

from ...testing.testkit import Testkit, default_mapping

SECRET, TENANT = "conformance-onecloud-secret-71ab", "conformance.cx.onecloud.com"


def _start():
    from .emulator import OneCloudEmulator, OneCloudOptions
    return OneCloudEmulator(OneCloudOptions(client_secret=SECRET, tenant=TENANT)).start()


def _seed(server, row: dict[str, str]) -> None:
    with server.lock:
        server._insert({"loginId": row["email"].lower(), "firstName": row["given_name"],
                        "lastName": row["family_name"], "email": row["email"].lower(),
                        "title": row["title"], "timezone": row["timezone"]})


def testkit() -> Testkit:
    return Testkit(
        type="onecloud", start=_start,
        settings=lambda url: {"base_url": url, "tenant": TENANT, "client_id": "admin",
                              "client_secret": "env:CONFORMANCE_ONECLOUD_SECRET", "list_mode": "scim"},
        env={"CONFORMANCE_ONECLOUD_SECRET": SECRET},
        mapping=default_mapping("onecloud"),
        create_request=("POST", r"/scim/users\Z"),
        page_size=100, seed=_seed)   # the target's fixed SCIM page
