"""The keys of a [targets.NAME] table of type "ytel" and "ytel_ycc", and of its emulator's [sandbox.ytel] and [sandbox.ytel_ycc]."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ...target_settings import (Name, Positive, SandboxSettingsBase, SecretRef, TargetSettingsBase, _bounded,
                                _service_url, _Settings)

if TYPE_CHECKING:
    from ...config import PolicySettings


class _YtelTokenSettings(_Settings):
    """The token keys the Ytel AMS and YCC targets share."""
    # refreshDurationMinutes: how long the refresh token works (the access token's 120 are Ytel's)
    refresh_minutes: Annotated[int, _bounded("whole number", 1)] = 120

    @model_validator(mode="before")
    @classmethod
    def _renamed_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "token_minutes" in data:
            raise ValueError("token_minutes is now refresh_minutes (a whole number of minutes the "
                             "refresh token stays valid; the access token lasts Ytel's documented 120)")
        return data


class YccTargetSettings(TargetSettingsBase, _YtelTokenSettings):
    type: Literal["ytel_ycc"] = "ytel_ycc"
    base_url: str = "https://ycc-api.ytel.com"   # the YCC host; /api/v2/... is added to it
    token_url: str = "https://api.ytel.com/auth/v3/token"   # YCC takes the CPaaS token
    username: Name                      # an API user's e-mail, as for the AMS target
    password: SecretRef
    template_agent: Name                # the agent every new agent is cloned from
    admin_password: SecretRef | None = None   # lets e-mail changes through (`pass`); unset: manual items
    credential_keys: ClassVar[str] = "username and password"
    credential_urls: ClassVar[tuple[str, ...]] = ("base_url", "token_url")

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        return _service_url(value, ("http", "https"), f"use {cls.credential_keys}")[0]


class YtelTargetSettings(TargetSettingsBase, _YtelTokenSettings):
    type: Literal["ytel"] = "ytel"
    # base_url is the API host, https://api.ytel.com; /auth/v3 and /ams/v3 are added to it
    username: Name                      # an API user's e-mail (a UI token does not work)
    password: SecretRef
    account_id: Name                    # belongAcctId of the users created
    password_mode: Literal["generate", "none"] = "generate"   # none: SSO accounts, no password sent
    # what a changed e-mail becomes: a manual item, or a create plus a disable of the old account
    rename: Literal["manual", "recreate"] = "manual"
    # the work groups a mapping's `workgroups` may add people to and remove them from
    workgroups: list[Name] = Field(default_factory=list)
    # the account's confirmed call for removing users from a work group (the seed's is ambiguous)
    workgroup_remove_path: str | None = None
    credential_keys: ClassVar[str] = "username and password"
    moved_policy_keys: ClassVar[dict[str, str]] = {"ytel_rename": 'rename = "manual" or "recreate"'}

    @field_validator("workgroup_remove_path")
    @classmethod
    def _api_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or "://" in value or "?" in value):
            raise ValueError("must be a path on the API host starting with /, e.g. "
                             "\"/ams/v3/workgroup/remove\"")
        return value

    def rename_mode(self, policy: PolicySettings) -> str:
        return self.rename


class YtelSandboxSettings(SandboxSettingsBase):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9102
    username: Name = "api@sandbox.ytel.test"
    password: SecretRef
    account_id: Name = "173c6f7f-c911-f823-fb2d-a13e4780c300"
    rate_limit: Annotated[int, _bounded("whole number", 1, 100000)] = 150      # requests/s
    token_rate_limit: Annotated[int, _bounded("whole number", 1, 100000)] = 25  # on /auth/v3/token
    token_lifetime: Positive = 7200.0
    sso: bool = False                        # accept creates without a password
    workgroups: list[Name] = Field(default_factory=list)   # work groups the account starts with


class YccSandboxSettings(YtelSandboxSettings):
    """The YCC emulator is the AMS one plus the agent API: it takes the AMS keys too."""
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9106
    template_agent: Name = "9999"            # seeded, inactive
    admin_password: SecretRef | None = None  # the `pass` an e-mail change needs; unset: `password`
    soft_errors: bool = False                # refusals as HTTP 200 with status false
