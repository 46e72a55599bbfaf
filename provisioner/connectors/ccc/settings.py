"""The keys of a [targets.NAME] table of type "ccc", and of its emulator's [sandbox.ccc]."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator

from ...target_settings import (Name, Positive, SandboxSettingsBase, SecretRef, TargetSettingsBase, TimeZone,
                                _bounded, _Settings, _show, _text)


def _client_number(value: Any) -> str:
    """CCC's ClientID is numeric: written as a number or as text, it is kept as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _ws_route(value: Any) -> str:
    value = _text(value).strip("/")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", value):
        raise ValueError(f"must be a Resource or Resource/Action such as 'Agent/List', got {_show(value)}")
    return value


ClientNumber = Annotated[str, BeforeValidator(_client_number)]
WsRoute = Annotated[str, BeforeValidator(_ws_route)]


class CccActionSettings(_Settings):
    """The CCC WebServices routes of the agent actions: ASSUMED names, CCC does not document them."""
    list: WsRoute = "Agent/List"
    add: WsRoute = "Agent/Add"
    update: WsRoute = "Agent/Update"
    disable: WsRoute = "Agent/Disable"
    enable: WsRoute = "Agent/Enable"
    ping: WsRoute = "Ping"


class _CccNames(_Settings):
    """The undocumented names a CCC account and its emulator must agree on."""
    actions: CccActionSettings = Field(default_factory=CccActionSettings)
    id_field: Name = "AgentID"
    active_field: Name = "Active"
    list_key: Name = "Agents"


class CccTargetSettings(TargetSettingsBase, _CccNames):
    type: Literal["ccc"] = "ccc"
    # base_url is the WebServices host, e.g. https://api.ccc.uno; /ws/{Resource}/{Action} is added
    client_id: ClientNumber
    username: Name                      # the AuthUsername
    secret_key: SecretRef
    timezone: TimeZone | None = None    # the zone RequestDateTime is written in; None: the host's
    body_format: Literal["text", "form"] = "text"
    success_codes: list[Annotated[int, _bounded("whole number", 100, 999)]] = Field(
        default_factory=lambda: [200, 201])
    credential_keys: ClassVar[str] = "client_id, username and secret_key"

    @field_validator("success_codes")
    @classmethod
    def _some_code(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("must list at least one ResponseCode, e.g. [200, 201]")
        return value


class CccSandboxSettings(SandboxSettingsBase, _CccNames):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9105
    client_id: ClientNumber = "1001"
    username: Name = "sandbox"
    secret_key: SecretRef
    timezone: TimeZone | None = None         # None: the host's local zone, as the target's default
    window: Positive = 300.0                 # seconds RequestDateTime may be off
    soft_errors: bool = False                # refusals as HTTP 200 with the code in ResponseCode
