"""One module per target system, each behind the interface in base.py.

`open_target` is the one place that turns a target's settings into a
connected target; a new target type adds one entry to `_FACTORIES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError
from ..paths import top_level


@dataclass
class TargetHandle:
    """A connected target together with what the engine needs to drive it."""
    name: str
    target: Any          # a provisioner.targets.base.Target
    mapping: Any         # a provisioner.mapping.Mapping
    concurrency: int
    rate_limit: float | None

    def close(self) -> None:
        self.target.close()


def _open_scim(name: str, settings, paths) -> Any:
    from .scim import ScimTarget
    return ScimTarget(
        name, settings.base_url, paths=paths, token=settings.token, username=settings.username,
        password=settings.password, update_method=settings.update_method,
        page_size=settings.page_size, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


def _open_onecloud(name: str, settings, paths) -> Any:
    from .onecloud import OneCloudTarget
    return OneCloudTarget(
        name, settings.base_url, paths=paths, client_id=settings.client_id,
        client_secret=settings.client_secret, tenant=settings.tenant_domain,
        list_mode=settings.list_mode, concurrency=settings.concurrency, timeout=settings.timeout,
        tls_verify=settings.tls_verify, ca_file=settings.ca_file, rate_limit=settings.rate_limit)


def _open_ccs(name: str, settings, paths) -> Any:
    from .ccs import CcsTarget
    return CcsTarget(
        name, settings.base_url, paths=paths, token=settings.token, tenant_uuid=settings.tenant_uuid,
        mode=settings.mode, api_path=settings.api_path, auth_header=settings.auth_header,
        auth_scheme=settings.auth_scheme, signout_presence=settings.signout_presence,
        timeout=settings.timeout, tls_verify=settings.tls_verify, ca_file=settings.ca_file,
        rate_limit=settings.rate_limit)


def _open_ytel(name: str, settings, paths) -> Any:
    from .ytel import YtelTarget
    return YtelTarget(
        name, settings.base_url, paths=paths, username=settings.username, password=settings.password,
        account_id=settings.account_id, password_mode=settings.password_mode,
        refresh_minutes=settings.refresh_minutes, workgroups=settings.workgroups,
        workgroup_remove_path=settings.workgroup_remove_path,
        timeout=settings.timeout, tls_verify=settings.tls_verify, ca_file=settings.ca_file,
        rate_limit=settings.rate_limit)


def _open_ytel_ycc(name: str, settings, paths) -> Any:
    from .ytel_ycc import YccTarget
    return YccTarget(
        name, settings.base_url, paths=paths, token_url=settings.token_url, username=settings.username,
        password=settings.password, template_agent=settings.template_agent,
        admin_password=settings.admin_password, refresh_minutes=settings.refresh_minutes,
        concurrency=settings.concurrency, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


def _open_clienttrack(name: str, settings, paths) -> Any:
    from .clienttrack import ClientTrackTarget
    return ClientTrackTarget(
        name, settings.base_url, paths=paths, subscription_key=settings.subscription_key,
        api_key=settings.api_key, org_id=settings.org_id, table=settings.table,
        key_column=settings.key_column, columns=settings.columns, status_field=settings.status_field,
        active_value=settings.active_value, inactive_value=settings.inactive_value,
        paging=settings.paging, page_size=settings.page_size, create_path=settings.create_path,
        update_path=settings.update_path, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


def _open_ccc(name: str, settings, paths) -> Any:
    from .ccc import CccTarget
    return CccTarget(
        name, settings.base_url, paths=paths, client_id=settings.client_id, username=settings.username,
        secret_key=settings.secret_key, time_zone=settings.timezone, body_format=settings.body_format,
        actions=settings.actions.model_dump(), id_field=settings.id_field,
        active_field=settings.active_field, list_key=settings.list_key,
        success_codes=settings.success_codes, timeout=settings.timeout, tls_verify=settings.tls_verify,
        ca_file=settings.ca_file, rate_limit=settings.rate_limit)


_FACTORIES: dict[str, Callable[..., Any]] = {"scim": _open_scim, "onecloud": _open_onecloud,
                                             "ccs": _open_ccs, "clienttrack": _open_clienttrack,
                                             "ccc": _open_ccc,
                                             "ytel": _open_ytel, "ytel_ycc": _open_ytel_ycc}


# kind -> (module, class), for what the engine asks of a kind without opening one
_CLASSES = {"scim": ("scim", "ScimTarget"), "onecloud": ("onecloud", "OneCloudTarget"),
            "ccs": ("ccs", "CcsTarget"), "clienttrack": ("clienttrack", "ClientTrackTarget"),
            "ccc": ("ccc", "CccTarget"), "ytel": ("ytel", "YtelTarget"),
            "ytel_ycc": ("ytel_ycc", "YccTarget")}


def link_keys(kind: str) -> frozenset[str]:
    """What a target of this kind remembers with a link (other mappings' links.<target>.<key>)."""
    module, cls = _CLASSES[kind]
    return getattr(importlib.import_module(f".{module}", __name__), cls).link_keys


def open_target(name: str, settings, mapping) -> TargetHandle:
    paths = list(dict.fromkeys([*mapping.attributes, *mapping.correlate]))
    target = _FACTORIES[settings.type](name, settings, paths)
    try:
        _refuse_server_owned(name, target, mapping)
    except ConfigError:
        target.close()
        raise
    return TargetHandle(name=name, target=target, mapping=mapping,
                        concurrency=settings.concurrency, rate_limit=settings.rate_limit)


def _refuse_server_owned(name: str, target, mapping) -> None:
    owned = {o.casefold() for o in target.server_owned}
    problems = [f"{mapping.path}: attributes.{path}: {top_level(path)} is set by target {name} "
                "itself and cannot be written; remove it from the mapping"
                for path in mapping.attributes if top_level(path).casefold() in owned]
    if problems:
        raise ConfigError("\n".join(problems))
