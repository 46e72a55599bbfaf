"""The CCC connector's testkit: its emulator (signed POST /ws/{Resource}/{Action} calls)."""

from __future__ import annotations

from ...testing.testkit import Testkit, default_mapping

CLIENT_ID, USERNAME, SECRET = "4242", "ws-conformance", "conformance-ccc-secret-5d2c"


def _start():
    from .emulator import CccEmulator, CccOptions
    return CccEmulator(CccOptions(client_id=CLIENT_ID, username=USERNAME, secret_key=SECRET,
                                  time_zone="UTC")).start()


def testkit() -> Testkit:
    return Testkit(
        type="ccc", start=_start,
        settings=lambda url: {"base_url": url, "client_id": int(CLIENT_ID), "username": USERNAME,
                              "secret_key": "env:CONFORMANCE_CCC_SECRET", "timezone": "UTC"},
        env={"CONFORMANCE_CCC_SECRET": SECRET},
        mapping=default_mapping("ccc"),
        create_request=("POST", r"/ws/Agent/Add\Z"))   # Agent/List answers every agent at once
