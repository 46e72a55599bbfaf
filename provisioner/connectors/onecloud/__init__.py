"""OneCloud CX: users over SCIM 2.0 plus its user API for teams and extensions."""

from __future__ import annotations

from .. import Connector, SandboxSpec
from .settings import OneCloudSandboxSettings, OneCloudTargetSettings


def _open(name: str, settings, paths):
    from .target import OneCloudTarget
    return OneCloudTarget(
        name, settings.base_url, paths=paths, client_id=settings.client_id,
        client_secret=settings.client_secret, tenant=settings.tenant_domain,
        list_mode=settings.list_mode, concurrency=settings.concurrency, timeout=settings.timeout,
        tls_verify=settings.tls_verify, ca_file=settings.ca_file, rate_limit=settings.rate_limit)


connector = Connector(
    type="onecloud", summary="OneCloud CX: SCIM users plus teams and extensions (OAuth client credentials)",
    settings=OneCloudTargetSettings, target="provisioner.connectors.onecloud.target:OneCloudTarget", open=_open,
    default_mapping="mapping.toml", docs="README.md",
    sandbox=SandboxSpec(settings=OneCloudSandboxSettings, build="provisioner.connectors.onecloud.emulator:build",
                        demo="provisioner.connectors.onecloud.emulator:demo_target"),
    testkit="provisioner.connectors.onecloud.testkit:testkit")
