"""Ytel: two connectors sharing one token flow, AMS users (`ytel`) and YCC agents (`ytel_ycc`)."""

from __future__ import annotations

from .. import Connector, SandboxSpec
from .settings import YccSandboxSettings, YccTargetSettings, YtelSandboxSettings, YtelTargetSettings


def _open_ams(name: str, settings, paths):
    from .ams_target import YtelTarget
    return YtelTarget(
        name, settings.base_url, paths=paths, username=settings.username, password=settings.password,
        account_id=settings.account_id, password_mode=settings.password_mode,
        refresh_minutes=settings.refresh_minutes, workgroups=settings.workgroups,
        workgroup_remove_path=settings.workgroup_remove_path,
        timeout=settings.timeout, tls_verify=settings.tls_verify, ca_file=settings.ca_file,
        rate_limit=settings.rate_limit)


def _open_ycc(name: str, settings, paths):
    from .ycc_target import YccTarget
    return YccTarget(
        name, settings.base_url, paths=paths, token_url=settings.token_url, username=settings.username,
        password=settings.password, template_agent=settings.template_agent,
        admin_password=settings.admin_password, refresh_minutes=settings.refresh_minutes,
        concurrency=settings.concurrency, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


ams = Connector(
    type="ytel", summary="Ytel AMS: users and work groups (Ytel token, paced)",
    settings=YtelTargetSettings, target="provisioner.connectors.ytel.ams_target:YtelTarget", open=_open_ams,
    default_mapping="mapping.toml", docs="README.md",
    sandbox=SandboxSpec(settings=YtelSandboxSettings, build="provisioner.connectors.ytel.emulator:build",
                        demo="provisioner.connectors.ytel.emulator:demo_target"),
    testkit="provisioner.connectors.ytel.testkit:ams_testkit")

ycc = Connector(
    type="ytel_ycc", summary="Ytel YCC: contact-centre agents cloned from a template (Ytel token)",
    settings=YccTargetSettings, target="provisioner.connectors.ytel.ycc_target:YccTarget", open=_open_ycc,
    default_mapping="ycc_mapping.toml", docs="README.md",
    sandbox=SandboxSpec(settings=YccSandboxSettings, build="provisioner.connectors.ytel.ycc_emulator:build",
                        demo="provisioner.connectors.ytel.ycc_emulator:demo_target"),
    testkit="provisioner.connectors.ytel.testkit:ycc_testkit")
