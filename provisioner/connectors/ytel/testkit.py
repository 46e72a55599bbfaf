"""The Ytel connectors' testkits: AMS users (its emulator: token endpoint, users API) and YCC
agents (its emulator: the AMS token endpoint plus the agent API, seeded with the template
agent every new agent is cloned from)."""

from __future__ import annotations

from ...testing.testkit import Testkit, default_mapping

USERNAME, PASSWORD = "api@conformance.ytel.test", "conformance-ytel-password-4a8e"


def _start_ams():
    from .emulator import YtelEmulator, YtelOptions
    return YtelEmulator(YtelOptions(username=USERNAME, password=PASSWORD)).start()


def ams_testkit() -> Testkit:
    from .emulator import YtelOptions
    return Testkit(
        type="ytel", start=_start_ams,
        settings=lambda url: {"base_url": url, "username": USERNAME, "password": "env:CONFORMANCE_YTEL_PASSWORD",
                              "account_id": YtelOptions.account_id},
        env={"CONFORMANCE_YTEL_PASSWORD": PASSWORD},
        mapping=default_mapping("ytel"),
        update={"family_name": "Changed{n}", "work_phone": "+1555020{n:04d}"},
        create_request=("POST", r"/ams/v3/users\Z"))   # one answer lists every user

YCC_PASSWORD = "conformance-ycc-password-c61f"


def _start_ycc():
    from .ycc_emulator import YccEmulator, YccOptions
    return YccEmulator(YccOptions(username=USERNAME, password=YCC_PASSWORD)).start()


def ycc_testkit() -> Testkit:
    return Testkit(
        type="ytel_ycc", start=_start_ycc,
        settings=lambda url: {"base_url": url, "token_url": url + "/auth/v3/token", "username": USERNAME,
                              "password": "env:CONFORMANCE_YCC_PASSWORD", "template_agent": "9999"},
        env={"CONFORMANCE_YCC_PASSWORD": YCC_PASSWORD},
        mapping=default_mapping("ytel_ycc"),
        create_request=("POST", r"/clone-agent-details\Z"))   # get-agent-list answers every agent
