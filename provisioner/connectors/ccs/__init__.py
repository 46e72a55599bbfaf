"""CCS: contact-centre agents as extensions (header token)."""

from __future__ import annotations

from .. import Connector, SandboxSpec
from .settings import CcsSandboxSettings, CcsTargetSettings


def _open(name: str, settings, paths):
    from .target import CcsTarget
    return CcsTarget(
        name, settings.base_url, paths=paths, token=settings.token, tenant_uuid=settings.tenant_uuid,
        mode=settings.mode, api_path=settings.api_path, auth_header=settings.auth_header,
        auth_scheme=settings.auth_scheme, signout_presence=settings.signout_presence,
        timeout=settings.timeout, tls_verify=settings.tls_verify, ca_file=settings.ca_file,
        rate_limit=settings.rate_limit)


connector = Connector(
    type="ccs", summary="CCS: agents as existing extensions, found by name (header token)",
    settings=CcsTargetSettings, target="provisioner.connectors.ccs.target:CcsTarget", open=_open,
    default_mapping="mapping.toml", docs="README.md",
    sandbox=SandboxSpec(settings=CcsSandboxSettings, build="provisioner.connectors.ccs.emulator:build",
                        demo="provisioner.connectors.ccs.emulator:demo_target"),
    testkit="provisioner.connectors.ccs.testkit:testkit")
