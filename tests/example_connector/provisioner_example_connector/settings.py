"""The keys of a [targets.NAME] table of type "example_directory", and of [sandbox.example_directory]."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from provisioner.target_settings import SandboxSettingsBase, SecretRef, TargetSettingsBase


class ExampleDirectorySettings(TargetSettingsBase):
    type: Literal["example_directory"] = "example_directory"
    token: SecretRef                                # the API's bearer token (file: or env: reference)
    page_size: int = Field(default=100, ge=1, le=100)   # users per list request; the API allows 100
    credential_keys: ClassVar[str] = "token"


class ExampleDirectorySandboxSettings(SandboxSettingsBase):
    port: int = Field(default=9190, ge=1, le=65535)
    token: SecretRef
