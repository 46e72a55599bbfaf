"""The Ytel YCC connector's testkit: its emulator (AMS token endpoint plus the agent API),
seeded with the template agent every new agent is cloned from."""

from __future__ import annotations

from ..testkit import Testkit, default_mapping

USERNAME, PASSWORD = "api@conformance.ytel.test", "conformance-ycc-password-c61f"


def _start():
    from ...sandbox.ytel_ycc import YccEmulator, YccOptions
    return YccEmulator(YccOptions(username=USERNAME, password=PASSWORD)).start()


def testkit() -> Testkit:
    return Testkit(
        type="ytel_ycc", start=_start,
        settings=lambda url: {"base_url": url, "token_url": url + "/auth/v3/token", "username": USERNAME,
                              "password": "env:CONFORMANCE_YCC_PASSWORD", "template_agent": "9999"},
        env={"CONFORMANCE_YCC_PASSWORD": PASSWORD},
        mapping=default_mapping("ytel_ycc"),
        create_request=("POST", r"/clone-agent-details\Z"))   # get-agent-list answers every agent
