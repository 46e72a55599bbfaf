"""The keys of a [targets.NAME] table of type "clienttrack", and of its emulator's [sandbox.clienttrack]."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from ...target_settings import (Name, Ratio, SandboxSettingsBase, SecretRef, TargetSettingsBase, _bounded,
                                _show, _text)


def _column(value: Any) -> str:
    value = _text(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"must be a column or table name (letters, digits and _), got {_show(value)}")
    return value


Column = Annotated[str, BeforeValidator(_column)]


class ClientTrackTargetSettings(TargetSettingsBase):
    type: Literal["clienttrack"] = "clienttrack"
    base_url: str = "https://api.clienttrack.net"
    subscription_key: SecretRef
    api_key: SecretRef
    org_id: Name | None = None
    # which table holds staff and how it marks them inactive is not published: assumptions
    table: Column = "Users"
    key_column: Column = "UserID"
    columns: dict[str, Column] = Field(default_factory=dict)   # mapping attribute -> column
    status_field: Column = "ActiveStatus"
    active_value: Name = "Active"
    inactive_value: Name = "Inactive"
    paging: Literal["top", "keyset"] = "top"
    page_size: Annotated[int, _bounded("whole number", 1, 500)] = 100
    create_path: Name = "/cto/{table}"
    update_path: Name = "/cto/{table}/{id}"
    credential_keys: ClassVar[str] = "subscription_key and api_key"


class ClientTrackSandboxSettings(SandboxSettingsBase):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9104
    subscription_key: SecretRef
    api_key: SecretRef
    environment: Name = "ClientTrack sandbox"   # what /auth/test names
    paging_quirk: Literal["none", "top_first", "repeat"] = "none"
    bad_gateway_rate: Ratio = 0.0            # share of requests answered 502
