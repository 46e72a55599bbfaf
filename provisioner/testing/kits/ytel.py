"""The Ytel AMS connector's testkit: its emulator (token endpoint, AMS users API)."""

from __future__ import annotations

from ..testkit import Testkit, default_mapping

USERNAME, PASSWORD = "api@conformance.ytel.test", "conformance-ytel-password-4a8e"


def _start():
    from ...sandbox.ytel import YtelEmulator, YtelOptions
    return YtelEmulator(YtelOptions(username=USERNAME, password=PASSWORD)).start()


def testkit() -> Testkit:
    from ...sandbox.ytel import YtelOptions
    return Testkit(
        type="ytel", start=_start,
        settings=lambda url: {"base_url": url, "username": USERNAME, "password": "env:CONFORMANCE_YTEL_PASSWORD",
                              "account_id": YtelOptions.account_id},
        env={"CONFORMANCE_YTEL_PASSWORD": PASSWORD},
        mapping=default_mapping("ytel"),
        update={"family_name": "Changed{n}", "work_phone": "+1555020{n:04d}"},
        create_request=("POST", r"/ams/v3/users\Z"))   # one answer lists every user
