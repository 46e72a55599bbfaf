"""A target's settings -> a connected target, through its connector in the registry.

`open_target` is the one place that turns a target's settings into a
connected target; a new target type is a new connector, nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .connectors import connector
from .errors import ConfigError
from .scim_paths import top_level


@dataclass
class TargetHandle:
    """A connected target together with what the engine needs to drive it."""
    name: str
    target: Any          # a provisioner.target.Target
    mapping: Any         # a provisioner.mapping.Mapping
    concurrency: int
    rate_limit: float | None

    def close(self) -> None:
        self.target.close()


def link_keys(kind: str) -> frozenset[str]:
    """What a target of this kind remembers with a link (other mappings' links.<target>.<key>)."""
    return connector(kind).target_class().link_keys


def open_target(name: str, settings, mapping) -> TargetHandle:
    paths = list(dict.fromkeys([*mapping.attributes, *mapping.correlate]))
    target = connector(settings.type).open(name, settings, paths)
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
