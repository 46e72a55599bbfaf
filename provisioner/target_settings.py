"""What every target's settings share: the base model of a [targets.NAME] table, the
base of a [sandbox.<type>] table, and the field types a connector's settings build on.

A connector's settings.py subclasses TargetSettingsBase (and SandboxSettingsBase for its
emulator); config.py assembles them from the registry. Each field type raises a ValueError
whose text is the sentence config_errors.py puts after the dotted key.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator, model_validator

from .secrets import Secret, SecretReferenceError, resolve

if TYPE_CHECKING:
    from .config import PolicySettings

TARGET_NAME = re.compile(r"[A-Za-z0-9_-]+")


# --- reusable field types ---------------------------------------------------

def _show(value: Any) -> str:
    """A config value as an error message may quote it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _config_dir(info: ValidationInfo) -> Path:
    # settings built directly (tests, other modules) have no context
    return (info.context or {}).get("config_dir") or Path.cwd()


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def _path(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        return _absolute(value, _config_dir(info))
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a file path, got {_show(value)}")
    return _absolute(Path(value.strip()), _config_dir(info))


def _secret(value: Any, info: ValidationInfo) -> Secret:
    if isinstance(value, Secret):
        return value
    try:
        return resolve(value, base_dir=_config_dir(info))
    except SecretReferenceError as exc:
        raise ValueError(str(exc)) from None


def _bounded(kind: str, low: float, high: float | None = None, exclusive: bool = False):
    """A number check whose single message states the whole allowed range."""
    if high is not None:
        need = f"must be a {kind} between {low} and {high}"
    elif exclusive:
        need = f"must be a {kind} greater than {low}"
    else:
        need = f"must be a {kind} of {low} or more"
    whole = kind == "whole number"

    def check(value: Any) -> Any:
        numeric = isinstance(value, int) if whole else isinstance(value, (int, float))
        if (isinstance(value, bool) or not numeric or not math.isfinite(value)
                or value < low or (exclusive and value == low)
                or (high is not None and value > high)):
            raise ValueError(f"{need}, got {_show(value)}")
        return value if whole else float(value)

    return BeforeValidator(check)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_show(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _source_name(value: Any) -> str:
    value = _text(value)
    if not TARGET_NAME.fullmatch(value):
        raise ValueError(f"invalid source name {value!r}: use letters, digits, '-' and '_'")
    return value


def _time_zone(value: Any) -> str:
    value = _text(value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {_show(value)} (use an IANA name such as 'Europe/Berlin')") from None
    return value


def _service_url(value: str, schemes: tuple[str, ...], instead: str):
    """(trimmed URL, its parts) when it has one of `schemes`, a host and no credentials."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be an {' or '.join(s + '://' for s in schemes)} URL, got {_show(value)}")
    if parts.username or parts.password:
        # deliberately not quoting the URL: it holds a credential
        raise ValueError(f"must not contain credentials: {instead}")
    return value, parts


def _loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves this machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_cleartext(allow_insecure: bool, what: str, sent: str, instead: str) -> None:
    """The one rule for a plain-text transport: credentials cross the network
    encrypted unless the config says `allow_insecure = true`."""
    if not allow_insecure:
        raise ValueError(f"{what} would send {sent} unencrypted: {instead}, or set allow_insecure = true")


ConfigPath = Annotated[Path, BeforeValidator(_path)]
SourceName = Annotated[str, BeforeValidator(_source_name)]
TimeZone = Annotated[str, BeforeValidator(_time_zone)]
SecretRef = Annotated[Secret, BeforeValidator(_secret)]
Name = Annotated[str, BeforeValidator(_text)]
Percent = Annotated[float, _bounded("number", 0, 100)]
Ratio = Annotated[float, _bounded("number", 0, 1)]
Count = Annotated[int, _bounded("whole number", 0)]
Positive = Annotated[float, _bounded("number", 0, exclusive=True)]


def _keep_patterns(value: Any) -> dict[str, list[str]]:
    """`keep`: a target path -> full-match regexes; an account matching one is never an orphan
    to disable. Each pattern compiles here, so a typo stops the load, not a run."""
    if not isinstance(value, dict):
        raise ValueError("must be a table of attribute path = [regular expressions]")
    out = {}
    for path, patterns in value.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{path}: must be a list of regular expressions")
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{path}: {pattern!r} is not a regular expression: {exc}") from None
        out[str(path)] = list(patterns)
    return out


KeepPatterns = Annotated[dict, BeforeValidator(_keep_patterns)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)


# the mass-change limits a target may set for itself (else policy's apply)
CHANGE_LIMITS = ("max_disable_percent", "max_disable_count", "max_update_percent", "max_update_count",
                 "max_clear_percent", "max_clear_count", "max_delete_percent", "max_delete_count",
                 "percent_floor")
# the lifecycle keys a target may set for itself (else policy's apply)
LIFECYCLE_KEYS = ("delete_after_days", "unmanaged", "keep")


class TargetSettingsBase(_Settings):
    """Keys every HTTP target has; a kind adds its `type` and its own keys."""
    base_url: str
    mapping: ConfigPath
    concurrency: Annotated[int, _bounded("whole number", 1, 64)] = 4
    rate_limit: Positive | None = None  # requests per second; None is unlimited
    timeout: Positive = 30.0
    tls_verify: bool = True
    ca_file: ConfigPath | None = None
    max_disable_percent: Percent | None = None
    max_disable_count: Count | None = None
    max_update_percent: Percent | None = None
    max_update_count: Count | None = None
    max_clear_percent: Percent | None = None
    max_clear_count: Count | None = None
    percent_floor: Count | None = None
    max_delete_percent: Percent | None = None
    max_delete_count: Count | None = None
    delete_after_days: Count | None = None
    unmanaged: Literal["ignore", "report", "disable"] | None = None
    keep: KeepPatterns | None = None
    allow_insecure: bool = False        # let credentials go over http:// to another machine
    # named when a URL holds credentials
    credential_keys: ClassVar[str] = "token, or username and password"
    # the keys whose URLs are sent the credentials
    credential_urls: ClassVar[tuple[str, ...]] = ("base_url",)
    # [policy] keys this kind took into its own table: old key -> its key here (an old config is told)
    moved_policy_keys: ClassVar[dict[str, str]] = {}

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value, _ = _service_url(value, ("http", "https"), f"use {cls.credential_keys}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _encrypted_credentials(self) -> TargetSettingsBase:
        for key in self.credential_urls:
            host = urlsplit(getattr(self, key)).hostname
            if getattr(self, key).startswith("http://") and not _loopback(host):
                _refuse_cleartext(self.allow_insecure, f"{key} is http:// to {host}, not this machine, and",
                                  "the credentials", "use https://")
        return self

    def disable_limits(self, policy: PolicySettings) -> tuple[float, int]:
        """The (max_disable_percent, max_disable_count) in force for this target."""
        limits = self.change_limits(policy)
        return limits["max_disable_percent"], limits["max_disable_count"]

    def change_limits(self, policy: PolicySettings) -> dict[str, float | int]:
        """Every mass-change limit in force for this target: its own, else the policy's."""
        return {key: getattr(policy, key) if getattr(self, key) is None else getattr(self, key)
                for key in CHANGE_LIMITS}

    def rename_mode(self, policy: PolicySettings) -> str:
        """What a change of an immutable attribute becomes: "manual" or "recreate"."""
        return "manual"

    def lifecycle(self, policy: PolicySettings) -> dict[str, Any]:
        """delete_after_days, unmanaged and keep in force for this target: its own, else the policy's."""
        return {key: getattr(policy, key) if getattr(self, key) is None else getattr(self, key)
                for key in LIFECYCLE_KEYS}


class SandboxSettingsBase(_Settings):
    """Keys every local emulator has (`provisioner sandbox serve`)."""
    port: Annotated[int, _bounded("whole number", 1, 65535)]
    state_file: ConfigPath | None = None     # keep the emulator's accounts between runs
    latency: Annotated[float, _bounded("number", 0)] = 0.0   # seconds added to each answer
    error_rate: Ratio = 0.0                  # share of requests answered 500
    throttle_rate: Ratio = 0.0               # share of requests answered 429
    retry_after: Annotated[float, _bounded("number", 0)] = 1.0   # seconds, sent with each 429
    token_lifetime: Positive = 3600.0        # seconds an issued token works

