"""One module per target system, each behind the interface in base.py.

`open_target` is the one place that turns a target's settings into a
connected target; a new target type adds one entry to `_FACTORIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


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


def _open_ytel(name: str, settings, paths) -> Any:
    from .ytel import YtelTarget
    return YtelTarget(
        name, settings.base_url, paths=paths, username=settings.username, password=settings.password,
        account_id=settings.account_id, password_mode=settings.password_mode,
        token_minutes=settings.token_minutes,
        timeout=settings.timeout, tls_verify=settings.tls_verify, ca_file=settings.ca_file,
        rate_limit=settings.rate_limit)


_FACTORIES: dict[str, Callable[..., Any]] = {"scim": _open_scim, "onecloud": _open_onecloud,
                                             "ytel": _open_ytel}


def open_target(name: str, settings, mapping) -> TargetHandle:
    paths = list(dict.fromkeys([*mapping.attributes, *mapping.correlate]))
    target = _FACTORIES[settings.type](name, settings, paths)
    return TargetHandle(name=name, target=target, mapping=mapping,
                        concurrency=settings.concurrency, rate_limit=settings.rate_limit)
