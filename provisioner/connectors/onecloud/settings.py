"""The keys of a [targets.NAME] table of type "onecloud", and of its emulator's [sandbox.onecloud]."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from ...target_settings import Name, SandboxSettingsBase, SecretRef, TargetSettingsBase, _bounded


class OneCloudTargetSettings(TargetSettingsBase):
    type: Literal["onecloud"] = "onecloud"
    # base_url is the tenant, https://{tenant}; the API paths are added to it
    tenant: Name | None = None          # the token request's scope; default: base_url's host
    client_id: Name
    client_secret: SecretRef
    list_mode: Literal["auto", "scim", "directory"] = "auto"
    credential_keys: ClassVar[str] = "client_id and client_secret"

    @property
    def tenant_domain(self) -> str:
        return self.tenant or (urlsplit(self.base_url).hostname or "")


class OneCloudSandboxSettings(SandboxSettingsBase):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9101
    client_id: Name = "admin"
    client_secret: SecretRef
    tenant: Name = "127.0.0.1"               # the `scope` the token endpoint accepts
    scim_paging: bool = True                 # false: only the directory lists users
    roles_as_objects: bool = False           # roles answered as {"value": ...} objects
    scim_groups: bool = False                # SCIM users carry their team as groups
