"""SCIM 2.0: the /Users endpoint of any compliant server (RFC 7643/7644)."""

from __future__ import annotations

from .. import Connector
from .settings import ScimTargetSettings


def _open(name: str, settings, paths):
    from .target import ScimTarget
    return ScimTarget(
        name, settings.base_url, paths=paths, token=settings.token, username=settings.username,
        password=settings.password, update_method=settings.update_method,
        page_size=settings.page_size, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


connector = Connector(
    type="scim", summary="SCIM 2.0 (RFC 7643/7644): the /Users endpoint of any compliant server",
    settings=ScimTargetSettings, target="provisioner.connectors.scim.target:ScimTarget", open=_open,
    docs="README.md",
    testkit="provisioner.connectors.scim.testkit:testkit")
