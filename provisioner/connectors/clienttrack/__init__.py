"""ClientTrack: staff records in a CTO table (subscription and API keys)."""

from __future__ import annotations

from .. import Connector, SandboxSpec
from .settings import ClientTrackSandboxSettings, ClientTrackTargetSettings


def _open(name: str, settings, paths):
    from .target import ClientTrackTarget
    return ClientTrackTarget(
        name, settings.base_url, paths=paths, subscription_key=settings.subscription_key,
        api_key=settings.api_key, org_id=settings.org_id, table=settings.table,
        key_column=settings.key_column, columns=settings.columns, status_field=settings.status_field,
        active_value=settings.active_value, inactive_value=settings.inactive_value,
        paging=settings.paging, page_size=settings.page_size, create_path=settings.create_path,
        update_path=settings.update_path, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


connector = Connector(
    type="clienttrack", summary="ClientTrack: staff records in a CTO table (subscription and API keys)",
    settings=ClientTrackTargetSettings, target="provisioner.connectors.clienttrack.target:ClientTrackTarget",
    open=_open, default_mapping="mapping.toml", docs="README.md",
    sandbox=SandboxSpec(settings=ClientTrackSandboxSettings, build="provisioner.connectors.clienttrack.emulator:build",
                        demo="provisioner.connectors.clienttrack.emulator:demo_target"),
    testkit="provisioner.connectors.clienttrack.testkit:testkit")
