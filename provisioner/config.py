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
import os
import re

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union
from urllib.parse import urlsplit

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError,
                      ValidationInfo, create_model, field_validator, model_validator)

from provisioner.config_errors import config_error
from provisioner.connectors import broken, connectors
from provisioner.errors import ConfigError
from provisioner.files import read_toml
from provisioner.secrets import Secret
from provisioner.target_settings import (TARGET_NAME, ConfigPath, Count, KeepPatterns, Name, Percent, Positive,  # noqa: F401
                                         Ratio, SecretRef, SourceName, TimeZone, _absolute, _bounded,
                                         _config_dir, _refuse_cleartext, _secret, _service_url, _Settings,
                                         _show)

DB_ENV = "PROVISIONER_DB"
DEFAULT_DB_URL = "sqlite:///state/provisioner.db"


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
    # the account's lifecycle (docs/lifecycle.md); a target may set each for itself
    delete_after_days: Count | None = None   # None: never delete; 0: on the first run after the disable
    max_delete_percent: Percent = 5.0
    max_delete_count: Count = 10
    unmanaged: Literal["ignore", "report", "disable"] = "ignore"
    keep: KeepPatterns = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _moved_into_a_target(cls, data: Any) -> Any:
        """A policy key a connector took into its own [targets.NAME] table: say where it went."""
        for kind, conn in connectors().items() if isinstance(data, dict) else ():
            for old, new in conn.settings.moved_policy_keys.items():
                if old in data:
                    raise ValueError(f"{old}: has moved: set {new} in the [targets.NAME] table of each "
                                     f"target of type \"{kind}\" instead")
        return data


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


# New source kinds join this union; `type` picks the member.
SourceSettings = Annotated[Union[CsvSourceSettings, LdapSourceSettings, HrSourceSettings],
                          Field(discriminator="type")]
# every installed connector's settings: `type` picks the member
TargetSettings = Annotated[Union[tuple(c.settings for c in connectors().values())],
                           Field(discriminator="type")]
# [sandbox.<type>]: one optional table per connector that ships an emulator
SandboxSettings = create_model(
    "SandboxSettings", __base__=_Settings,
    **{kind: (Optional[c.sandbox.settings], None) for kind, c in connectors().items() if c.sandbox})


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
    _refuse_broken_connectors(name, raw)
    try:
        settings = Settings.model_validate(raw, context=context)
    except ValidationError as exc:
        raise config_error(name, exc, context["text"]) from None
    settings._config_path = config_path
    return settings


def _refuse_broken_connectors(name: str, raw: dict) -> None:
    """A target whose type is an installed connector that failed to load: say why, not "unknown type"."""
    failed = broken()
    targets = raw.get("targets")
    for target, table in targets.items() if isinstance(targets, dict) else ():
        kind = table.get("type") if isinstance(table, dict) else None
        if isinstance(kind, str) and kind in failed:
            raise ConfigError(f"{name}: targets.{target}.type: {failed[kind]}")


def load_state_settings(path: str | Path) -> StateSettings:
    """Only [state] of a config file (and PROVISIONER_DB): for commands that read the state DB
    and contact nothing, so they need none of the targets' secrets."""
    name, _, raw, context = _read(path)
    try:
        return _StateOnly.model_validate(raw, context=context).state
    except ValidationError as exc:
        raise config_error(name, exc, context["text"]) from None


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

