"""The keys of a [targets.NAME] table of type "scim"."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import model_validator

from ...target_settings import Name, SecretRef, TargetSettingsBase, _bounded


class ScimTargetSettings(TargetSettingsBase):
    type: Literal["scim"] = "scim"
    token: SecretRef | None = None
    username: Name | None = None
    password: SecretRef | None = None
    update_method: Literal["patch", "put"] = "patch"
    # None: the largest page the server announces (filter.maxResults), see target.py
    page_size: Annotated[int, _bounded("whole number", 1, 1000)] | None = None

    @model_validator(mode="after")
    def _one_auth_form(self) -> ScimTargetSettings:
        basic = self.username is not None or self.password is not None
        if self.token is not None and basic:
            raise ValueError("set either token (bearer) or username and password (basic), not both")
        if self.token is None and not (self.username and self.password):
            if self.username and not self.password:
                raise ValueError("username is set but password is missing")
            if self.password and not self.username:
                raise ValueError("password is set but username is missing")
            raise ValueError("set token (bearer) or username and password (basic)")
        return self
