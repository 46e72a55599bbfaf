"""config.toml -> validated settings.

`load_config` is the only entry point. Every mistake comes back as one
ConfigError whose text is one sentence per problem, each naming the file and
the dotted key ("config.toml: targets.directory.base_url: ..."), so an admin
can fix the file without reading a traceback.

Relative paths in the file are relative to the file's directory, never to the
working directory, so the same config works from cron, systemd or a shell.
"""

from __future__ import annotations

import codecs
import difflib
import ipaddress
import math
import os
import re

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr,
                      ValidationError, ValidationInfo, field_validator, model_validator)

from provisioner.errors import ConfigError
from provisioner.files import key_position, read_toml
from provisioner.secrets import Secret, SecretReferenceError, redact, resolve

DB_ENV = "PROVISIONER_DB"
DEFAULT_DB_URL = "sqlite:///state/provisioner.db"
TARGET_NAME = re.compile(r"[A-Za-z0-9_-]+")
# values of these keys are secrets: never echo what was written there
SECRET_KEYS = frozenset({"token", "password", "client_secret", "subscription_key", "api_key",
                         "secret_key", "admin_password"})


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


# --- sections ---------------------------------------------------------------

class StateSettings(_Settings):
    url: str = Field(DEFAULT_DB_URL, validate_default=True)

    @field_validator("url")
    @classmethod
    def _resolve_sqlite_path(cls, value: str, info: ValidationInfo) -> str:
        from_env = (info.context or {}).get("db_from_env", False)
        value = value.strip()
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
            origin = f" (from {DB_ENV})" if from_env else ""
            raise ValueError(f"must be a database URL such as {DEFAULT_DB_URL!r}, "
                             f"got {_show(value)}{origin}")
        match = re.fullmatch(r"(sqlite(?:\+\w+)?):///(.*)", value, re.DOTALL)
        if not match:
            return value
        scheme, rest = match.groups()
        file, sep, query = rest.partition("?")
        if not file or file.startswith((":memory:", "/")):
            return value
        # a path typed into the environment means the shell's directory
        base = Path.cwd() if from_env else _config_dir(info)
        return f"{scheme}:///{_absolute(Path(file), base)}{sep}{query}"


class _RowRules(_Settings):
    """What every source kind checks in each value before it can reach a target."""
    max_value_length: Annotated[int, _bounded("whole number", 1)] = 1024
    multiline: list[Name] = Field(default_factory=list)   # attributes whose values may break lines


class CsvSourceSettings(_RowRules):
    type: Literal["csv"] = "csv"
    name: SourceName | None = None
    path: ConfigPath
    key: Name
    delimiter: str = ","
    encoding: str = "utf-8"
    required: list[Name] = Field(default_factory=list)
    emails: list[Name] = Field(default_factory=lambda: ["email"])
    columns: dict[str, Name] = Field(default_factory=dict)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1 or value in "\"\r\n":
            raise ValueError(f"must be a single character (not a quote or newline), "
                             f"got {_show(value)}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codec = codecs.lookup(value)
        except LookupError:
            codec = None
        # bytes-to-bytes codecs such as base64 are known but cannot read a CSV
        if codec is None or not getattr(codec, "_is_text_encoding", True):
            raise ValueError(f"unknown text encoding {_show(value)}")
        return value

    @field_validator("columns")
    @classmethod
    def _distinct_targets(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for header, attr in value.items():
            header = header.strip()
            if not header:
                raise ValueError("column names must not be empty")
            other = next((h for h, a in out.items() if a == attr), None)
            if other is not None:
                raise ValueError(f"{other!r} and {header!r} both map to {attr!r}")
            out[header] = attr
        return out


class LdapSourceSettings(_RowRules):
    type: Literal["ldap"]
    name: SourceName | None = None
    url: str
    start_tls: bool | None = None       # None: on for ldap://, irrelevant for ldaps://
    allow_insecure: bool = False
    ca_file: ConfigPath | None = None
    bind_dn: Name | None = None
    password: SecretRef | None = None
    base_dn: Name
    filter: Name | None = None
    scope: Literal["sub", "one", "base"] = "sub"
    preset: Literal["openldap", "ad"] | None = None
    attributes: dict[str, Name] = Field(default_factory=dict)
    key: Name | None = None
    multi_valued: list[Name] = Field(default_factory=list)
    page_size: Annotated[int, _bounded("whole number", 1, 10000)] = 500
    timeout: Positive = 30.0
    required: list[Name] = Field(default_factory=list)
    emails: list[Name] = Field(default_factory=lambda: ["mail", "email"])

    _distinct_targets = field_validator("attributes")(CsvSourceSettings._distinct_targets.__func__)

    @field_validator("url")
    @classmethod
    def _ldap_url(cls, value: str) -> str:
        value, parts = _service_url(value, ("ldap", "ldaps"), "use bind_dn and password")
        try:
            parts.port
        except ValueError:
            raise ValueError(f"has an invalid port: {_show(value)}") from None
        if parts.path.strip("/") or parts.query:
            raise ValueError(f"must be only scheme, host and port (set base_dn and filter "
                             f"separately), got {_show(value)}")
        return value.rstrip("/")

    @field_validator("filter")
    @classmethod
    def _parenthesized(cls, value: str) -> str:
        if not (value.startswith("(") and value.endswith(")")):
            raise ValueError(f"must be an LDAP filter in parentheses, got {_show(value)}")
        return value

    @model_validator(mode="after")
    def _safe_bind(self) -> LdapSourceSettings:
        if self.key is None and self.preset is None:
            raise ValueError("key: is required unless a preset (\"openldap\" or \"ad\") supplies it")
        if self.password is not None and self.bind_dn is None:
            raise ValueError("password is set but bind_dn is missing")
        if self.bind_dn is not None and self.password is None:
            raise ValueError("bind_dn is set but password is missing")
        if self.url.startswith("ldap://") and self.start_tls is False:
            _refuse_cleartext(self.allow_insecure, "start_tls = false on ldap://", "the bind",
                              "use StartTLS or ldaps://")
        return self

    @property
    def uses_start_tls(self) -> bool:
        return self.url.startswith("ldap://") and self.start_tls is not False


class HrSourceSettings(_RowRules):
    type: Literal["hr"]
    name: SourceName | None = None
    path: ConfigPath
    format: Literal["csv", "json", "jsonl", "xlsx"] | None = None  # None: from the file suffix
    key: Name
    columns: dict[str, Name] = Field(default_factory=dict)
    required: list[Name] = Field(default_factory=list)
    emails: list[Name] = Field(default_factory=lambda: ["email"])
    delimiter: str = ","
    encoding: str = "utf-8"
    sheet: Name | None = None
    hire_date: Name = "hire_date"
    termination_date: Name = "termination_date"
    date_format: Name | None = None

    _one_char = field_validator("delimiter")(CsvSourceSettings._one_char.__func__)
    _known_codec = field_validator("encoding")(CsvSourceSettings._known_codec.__func__)
    _distinct_targets = field_validator("columns")(CsvSourceSettings._distinct_targets.__func__)

    @field_validator("date_format")
    @classmethod
    def _strftime_format(cls, value: str) -> str:
        if "%" not in value:
            raise ValueError(f"must be a strptime format such as '%d.%m.%Y', got {_show(value)}")
        try:
            datetime.strptime(datetime(2001, 2, 3).strftime(value), value)
        except ValueError:
            raise ValueError(f"is not a usable date format: {_show(value)}") from None
        return value

    @model_validator(mode="after")
    def _known_format(self) -> HrSourceSettings:
        if self.format is None:
            suffix = self.path.suffix.lower().lstrip(".")
            guessed = {"csv": "csv", "txt": "csv", "json": "json", "jsonl": "jsonl",
                       "ndjson": "jsonl", "xlsx": "xlsx"}.get(suffix)
            if guessed is None:
                raise ValueError(f"format: cannot tell the format from {self.path.name!r}: "
                                 "set format = \"csv\", \"json\", \"jsonl\" or \"xlsx\"")
            self.format = guessed
        return self


class PolicySettings(_Settings):
    missing: Literal["disable", "ignore"] = "disable"
    max_disable_percent: Percent = 10.0
    max_disable_count: Count = 50
    max_update_percent: Percent = 30.0
    max_update_count: Count = 500
    max_clear_percent: Percent = 5.0     # updates that empty a value that was set
    max_clear_count: Count = 20
    # a percentage limit counts only beyond this many items of its kind, so
    # one leaver among five accounts is not a mass change
    percent_floor: Count = 5
    min_source_ratio: Ratio = 0.5
    prehire_days: Count = 0
    prehire_active: bool = False
    lookahead_days: Count = 14
    timezone: TimeZone = "UTC"
    ytel_rename: Literal["manual", "recreate"] = "manual"   # default of a Ytel target's `rename`
    # the account's lifecycle (docs/lifecycle.md); a target may set each for itself
    delete_after_days: Count | None = None   # None: never delete; 0: on the first run after the disable
    max_delete_percent: Percent = 5.0
    max_delete_count: Count = 10
    unmanaged: Literal["ignore", "report", "disable"] = "ignore"
    keep: KeepPatterns = Field(default_factory=dict)


class MergeSettings(BaseModel):
    """[merge]: the join and, for any other key, an attribute's source precedence."""
    model_config = ConfigDict(extra="allow", strict=True)
    authoritative: SourceName | None = None
    join: dict[str, Name] = Field(default_factory=dict)

    @property
    def precedence(self) -> dict[str, list[str]]:
        return dict(self.model_extra or {})



class ScheduleSettings(_Settings):
    timezone: str = "UTC"
    cron: str = "0 2 * * *"
    auto_apply: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo
        try:
            zoneinfo.ZoneInfo(value.strip())
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise ValueError(f"unknown time zone {_show(value)} (use an IANA name such as "
                             "'Europe/Berlin')") from None
        return value.strip()

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger
        try:
            CronTrigger.from_crontab(value.strip(), timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a valid cron expression {_show(value)} (five fields: minute hour "
                             f"day month weekday, e.g. '0 2 * * *'): {exc}") from None
        return value.strip()


class LockSettings(_Settings):
    wait_seconds: Annotated[float, _bounded("number", 0)] = 60.0
    lease_seconds: Annotated[float, _bounded("number", 5)] = 60.0


def _webhook(value: Any, info: ValidationInfo) -> Secret:
    """A webhook URL often is a credential itself: whichever way it is given, it is kept as a Secret."""
    if isinstance(value, str) and value.strip().startswith(("env:", "file:")):
        secret = _secret(value.strip(), info)
        if urlsplit(secret.reveal()).scheme not in ("http", "https"):
            raise ValueError(f"{secret.reference} must hold an http:// or https:// URL")
        return secret
    if not isinstance(value, str):
        raise ValueError(f"must be a URL or \"env:NAME\" / \"file:PATH\", got {_show(value)}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, or \"env:NAME\" / \"file:PATH\"")
    return Secret(value.strip(), f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…")


class SmtpSettings(_Settings):
    host: Name
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 25
    sender: Name = Field(alias="from")
    to: list[Name]
    username: Name | None = None
    password: SecretRef | None = None
    starttls: bool = False
    timeout: Positive = 10.0

    @field_validator("to")
    @classmethod
    def _someone(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one address")
        return value


class NotifySettings(_Settings):
    webhooks: list[Annotated[Secret, BeforeValidator(_webhook)]] = Field(default_factory=list)
    timeout: Positive = 10.0
    smtp: SmtpSettings | None = None


# the mass-change limits a target may set for itself (else policy's apply)
CHANGE_LIMITS = ("max_disable_percent", "max_disable_count", "max_update_percent", "max_update_count",
                 "max_clear_percent", "max_clear_count", "max_delete_percent", "max_delete_count",
                 "percent_floor")
# the lifecycle keys a target may set for itself (else policy's apply)
LIFECYCLE_KEYS = ("delete_after_days", "unmanaged", "keep")


class _TargetSettings(_Settings):
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

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value, _ = _service_url(value, ("http", "https"), f"use {cls.credential_keys}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _encrypted_credentials(self) -> _TargetSettings:
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


class ScimTargetSettings(_TargetSettings):
    type: Literal["scim"] = "scim"
    token: SecretRef | None = None
    username: Name | None = None
    password: SecretRef | None = None
    update_method: Literal["patch", "put"] = "patch"
    # None: the largest page the server announces (filter.maxResults), see targets/scim.py
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


class OneCloudTargetSettings(_TargetSettings):
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


class CcsTargetSettings(_TargetSettings):
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


def _column(value: Any) -> str:
    value = _text(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"must be a column or table name (letters, digits and _), got {_show(value)}")
    return value


Column = Annotated[str, BeforeValidator(_column)]


class ClientTrackTargetSettings(_TargetSettings):
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


class CccTargetSettings(_TargetSettings, _CccNames):
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


class YccTargetSettings(_TargetSettings, _YtelTokenSettings):
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


class YtelTargetSettings(_TargetSettings, _YtelTokenSettings):
    type: Literal["ytel"] = "ytel"
    # base_url is the API host, https://api.ytel.com; /auth/v3 and /ams/v3 are added to it
    username: Name                      # an API user's e-mail (a UI token does not work)
    password: SecretRef
    account_id: Name                    # belongAcctId of the users created
    password_mode: Literal["generate", "none"] = "generate"   # none: SSO accounts, no password sent
    rename: Literal["manual", "recreate"] | None = None       # default: policy.ytel_rename
    # the work groups a mapping's `workgroups` may add people to and remove them from
    workgroups: list[Name] = Field(default_factory=list)
    # the account's confirmed call for removing users from a work group (the seed's is ambiguous)
    workgroup_remove_path: str | None = None
    credential_keys: ClassVar[str] = "username and password"

    @field_validator("workgroup_remove_path")
    @classmethod
    def _api_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or "://" in value or "?" in value):
            raise ValueError("must be a path on the API host starting with /, e.g. "
                             "\"/ams/v3/workgroup/remove\"")
        return value

    def rename_mode(self, policy: PolicySettings) -> str:
        return self.rename or policy.ytel_rename


class _SandboxSettings(_Settings):
    """Keys every local emulator has (`provisioner sandbox serve`)."""
    port: Annotated[int, _bounded("whole number", 1, 65535)]
    state_file: ConfigPath | None = None     # keep the emulator's accounts between runs
    latency: Annotated[float, _bounded("number", 0)] = 0.0   # seconds added to each answer
    error_rate: Ratio = 0.0                  # share of requests answered 500
    throttle_rate: Ratio = 0.0               # share of requests answered 429
    retry_after: Annotated[float, _bounded("number", 0)] = 1.0   # seconds, sent with each 429
    token_lifetime: Positive = 3600.0        # seconds an issued token works


class OneCloudSandboxSettings(_SandboxSettings):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9101
    client_id: Name = "admin"
    client_secret: SecretRef
    tenant: Name = "127.0.0.1"               # the `scope` the token endpoint accepts
    scim_paging: bool = True                 # false: only the directory lists users
    roles_as_objects: bool = False           # roles answered as {"value": ...} objects
    scim_groups: bool = False                # SCIM users carry their team as groups


class CcsSandboxSettings(_SandboxSettings):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9103
    token: SecretRef
    tenant_uuid: Name = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"


class ClientTrackSandboxSettings(_SandboxSettings):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9104
    subscription_key: SecretRef
    api_key: SecretRef
    environment: Name = "ClientTrack sandbox"   # what /auth/test names
    paging_quirk: Literal["none", "top_first", "repeat"] = "none"
    bad_gateway_rate: Ratio = 0.0            # share of requests answered 502


class CccSandboxSettings(_SandboxSettings, _CccNames):
    port: Annotated[int, _bounded("whole number", 1, 65535)] = 9105
    client_id: ClientNumber = "1001"
    username: Name = "sandbox"
    secret_key: SecretRef
    timezone: TimeZone | None = None         # None: the host's local zone, as the target's default
    window: Positive = 300.0                 # seconds RequestDateTime may be off
    soft_errors: bool = False                # refusals as HTTP 200 with the code in ResponseCode


class YtelSandboxSettings(_SandboxSettings):
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


class SandboxSettings(_Settings):
    onecloud: OneCloudSandboxSettings | None = None
    ccs: CcsSandboxSettings | None = None
    clienttrack: ClientTrackSandboxSettings | None = None
    ccc: CccSandboxSettings | None = None
    ytel: YtelSandboxSettings | None = None
    ytel_ycc: YccSandboxSettings | None = None


# New kinds join these unions; `type` picks the member.
SourceSettings = Annotated[Union[CsvSourceSettings, LdapSourceSettings, HrSourceSettings],
                          Field(discriminator="type")]
TargetSettings = Annotated[Union[ScimTargetSettings, OneCloudTargetSettings, CcsTargetSettings,
                                 ClientTrackTargetSettings, CccTargetSettings, YtelTargetSettings,
                                 YccTargetSettings],
                           Field(discriminator="type")]


class Settings(_Settings):
    state: StateSettings = Field(default_factory=dict, validate_default=True)
    source: SourceSettings | None = None
    sources: list[SourceSettings] = Field(default_factory=list)
    merge: MergeSettings = Field(default_factory=MergeSettings)
    targets: dict[str, TargetSettings] = Field(default_factory=dict, validate_default=True)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    lock: LockSettings = Field(default_factory=LockSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    _config_path: Path = PrivateAttr(default_factory=lambda: Path.cwd() / "config.toml")

    @field_validator("targets", mode="before")
    @classmethod
    def _target_names(cls, value: Any) -> Any:
        for name in value if isinstance(value, dict) else ():
            if not TARGET_NAME.fullmatch(name):
                raise ValueError(f"invalid target name {name!r}: use letters, digits, '-' and '_'")
        return value

    @field_validator("targets")
    @classmethod
    def _some_target(cls, value: dict) -> dict:
        if not value:
            raise ValueError("no target is configured")
        return value

    @model_validator(mode="after")
    def _one_source_form(self) -> Settings:
        if self.source is None and not self.sources:
            raise ValueError("source: the [source] table is missing")
        if self.source is not None and self.sources:
            raise ValueError("sources: set either [source] or [[sources]], not both")
        names: list[str] = []
        for i, src in enumerate(self.sources):
            if src.name is None:
                raise ValueError(f"sources[{i}].name: is required when several sources are listed")
            if src.name in names:
                raise ValueError(f"sources[{i}].name: {src.name!r} is used twice")
            names.append(src.name)
        known = names or [self.source_list[0].name]
        merge = self.merge
        for key, value in [("authoritative", merge.authoritative), *((f"join.{k}", k) for k in merge.join)]:
            if value is not None and value not in known:
                raise ValueError(f"merge.{key}: unknown source {value!r} (sources: {', '.join(known)})")
        for attr, order in merge.precedence.items():
            if (not isinstance(order, list) or not order
                    or not all(isinstance(n, str) for n in order)):
                raise ValueError(f"merge.{attr}: must be a list of source names, e.g. {known!r}")
            unknown = [n for n in order if n not in known]
            if unknown:
                raise ValueError(f"merge.{attr}: unknown source {unknown[0]!r} (sources: {', '.join(known)})")
        return self

    @property
    def source_list(self) -> list:
        """Every configured source, each with its name (a single [source] is named by its type)."""
        if self.sources:
            return list(self.sources)
        src = self.source
        return [src if src.name else src.model_copy(update={"name": src.type})]

    @property
    def config_path(self) -> Path:
        return self._config_path

    @property
    def config_dir(self) -> Path:
        return self._config_path.parent


# --- loading ----------------------------------------------------------------

def load_config(path: str | Path) -> Settings:
    """Read, parse and validate a config file; raise ConfigError on any mistake."""
    name, config_path, raw, context = _read(path)
    try:
        settings = Settings.model_validate(raw, context=context)
    except ValidationError as exc:
        raise _config_error(name, exc, context["text"]) from None
    settings._config_path = config_path
    return settings


def load_state_settings(path: str | Path) -> StateSettings:
    """Only [state] of a config file (and PROVISIONER_DB): for commands that read the state DB
    and contact nothing, so they need none of the targets' secrets."""
    name, _, raw, context = _read(path)
    try:
        return _StateOnly.model_validate(raw, context=context).state
    except ValidationError as exc:
        raise _config_error(name, exc, context["text"]) from None


class _StateOnly(BaseModel):
    """A config file seen for its [state] table alone (every other table left unread)."""
    model_config = ConfigDict(extra="ignore", strict=True)
    state: StateSettings = Field(default_factory=dict, validate_default=True)


def _read(path: str | Path) -> tuple[str, Path, dict, dict]:
    """(name as given, absolute path, the parsed TOML with PROVISIONER_DB applied, validation context)."""
    name = str(path)
    config_path = Path(os.path.abspath(Path(path).expanduser()))
    raw, text = read_toml(config_path, name, "config file")

    db_url = os.environ.get(DB_ENV, "").strip()
    if db_url:
        state = raw.get("state", {})
        if isinstance(state, dict):
            raw["state"] = {**state, "url": db_url}
    return name, config_path, raw, {"config_dir": config_path.parent, "db_from_env": bool(db_url),
                                    "text": text}


def _config_error(name: str, exc: ValidationError, text: str) -> ConfigError:
    lines = []
    for loc, problem in _problems(exc):
        at = key_position(text, loc) if loc else None
        lines.append(f"{name}: {problem}" + (f" (line {at[0]}, column {at[1]})" if at else ""))
    return ConfigError(redact("\n".join(lines)))


# --- pydantic errors -> sentences ---------------------------------------------

_TYPE_WORDS = {
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "path_type": "must be a file path",
    "is_instance_of": "has the wrong type",
}


def _known_types(union: Any) -> list[str]:
    members = get_args(get_args(union)[0]) or (get_args(union)[0],)
    return [tag for model in members for tag in get_args(model.model_fields["type"].annotation)]


def _key(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = str(part)
        part = part if TARGET_NAME.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
        out += f".{part}" if out else part
    return out


def _known_keys(loc: list[Any]) -> list[str]:
    """The keys the table at pydantic's `loc` (union tags included) accepts, for a "did you mean"."""
    annotation: Any = Settings
    for part in [*loc, None]:
        while True:  # Annotated[X, ...] -> X; X | None -> X
            args = get_args(annotation)
            if hasattr(annotation, "__metadata__"):
                annotation = args[0]
            elif args and type(None) in args and len(args) == 2:
                annotation = next(a for a in args if a is not type(None))
            else:
                break
        if part is None:
            break
        args = get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part)) or next(
                (f for f in annotation.model_fields.values() if f.alias == part), None)
            if field is None:
                return []
            annotation = field.annotation
        elif args and all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
            annotation = next((m for m in args if part in get_args(m.model_fields["type"].annotation)), None)
        elif args:  # dict[str, X] or list[X]: the name or index leads to an X
            annotation = args[-1]
        else:
            return []
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return []
    return [f.alias or name for name, f in annotation.model_fields.items()]


def _problems(exc: ValidationError) -> list[tuple[list, str]]:
    """(where in the file, the sentence) for each mistake pydantic found."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        # tagged unions put the member's tag into the location: drop it
        if loc[:1] == ["source"] and len(loc) > 1 and loc[1] in _known_types(SourceSettings):
            del loc[1]
        if loc[:1] == ["sources"] and len(loc) > 2 and loc[2] in _known_types(SourceSettings):
            del loc[2]
        if loc[:1] == ["targets"] and len(loc) > 2 and loc[2] in _known_types(TargetSettings):
            del loc[2]
        kind, value = error["type"], error.get("input")

        if kind == "extra_forbidden":
            where, text = _key(loc[:-1]), f"unknown key {str(loc[-1])!r}"
            close = difflib.get_close_matches(str(loc[-1]), _known_keys(list(error["loc"][:-1])), n=1)
            if close:
                text += f"; did you mean {close[0]!r}?"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            what, union = (("source", SourceSettings) if loc[0] in ("source", "sources")
                           else ("target", TargetSettings))
            known = ", ".join(_known_types(union))
            where = _key(loc + ["type"])
            if kind == "union_tag_invalid":
                text = f"unknown {what} type {_show(value.get('type'))} (known: {known})"
            else:
                text = f"is required (known: {known})"
        elif kind == "missing":
            where = _key(loc)
            text = f"the [{loc[0]}] table is missing" if len(loc) == 1 else "is required"
        elif kind == "value_error":
            where, text = _key(loc), str(error["ctx"]["error"])
        else:
            where = _key(loc)
            if kind == "literal_error":
                text = f"must be {error['ctx']['expected']}"
            else:
                text = _TYPE_WORDS.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
            if not SECRET_KEYS.intersection(map(str, loc)) and not isinstance(value, (dict, list)):
                text += f", got {_show(value)}"
        problems.append((loc, f"{where}: {text}" if where else text))
    return problems
