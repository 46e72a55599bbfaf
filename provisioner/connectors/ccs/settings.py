"""The keys of a [targets.NAME] table of type "ccs", and of its emulator's [sandbox.ccs]."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from ...target_settings import Name, SandboxSettingsBase, SecretRef, TargetSettingsBase, _bounded


class CcsTargetSettings(TargetSettingsBase):
    type: Literal["ccs"] = "ccs"
    # base_url is https://{CCS domain}; api_path is added to it
    api_path: Name = "/6/v2/api"
    token: SecretRef
    auth_header: Name = "Authorization"      # the REST auth scheme is not documented: an assumption
    auth_scheme: str = "Bearer"              # "" sends the bare token
    tenant_uuid: Name
    mode: Literal["tenant", "telco"] = "telco"   # list at /extensions or /tenants/{uuid}/extensions
    signout_presence: Name | None = None     # sign-out presence option set when an agent is disabled
    credential_keys: ClassVar[str] = "token"


class CcsSandboxSettings(SandboxSettingsBase):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9103
    token: SecretRef
    tenant_uuid: Name = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"
