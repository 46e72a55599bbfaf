"""CCC WebServices: contact-centre agents (signed requests)."""

from __future__ import annotations

from .. import Connector, SandboxSpec
from .settings import CccSandboxSettings, CccTargetSettings


def _open(name: str, settings, paths):
    from .target import CccTarget
    return CccTarget(
        name, settings.base_url, paths=paths, client_id=settings.client_id, username=settings.username,
        secret_key=settings.secret_key, time_zone=settings.timezone, body_format=settings.body_format,
        actions=settings.actions.model_dump(), id_field=settings.id_field,
        active_field=settings.active_field, list_key=settings.list_key,
        success_codes=settings.success_codes, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


connector = Connector(
    type="ccc", summary="CCC WebServices: contact-centre agents (signed requests)",
    settings=CccTargetSettings, target="provisioner.connectors.ccc.target:CccTarget", open=_open,
    default_mapping="mapping.toml", docs="README.md",
    sandbox=SandboxSpec(settings=CccSandboxSettings, build="provisioner.connectors.ccc.emulator:build",
                        demo="provisioner.connectors.ccc.emulator:demo_target"),
    testkit="provisioner.connectors.ccc.testkit:testkit")
