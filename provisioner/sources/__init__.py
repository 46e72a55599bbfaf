"""Reading the source(s) of truth: one entry point, `read_source`, for every kind.

Kinds: csv (csv_source), ldap (ldap_source), hr (hr_source); several at once
are joined by merge. Each reader returns a model.SourceResult.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from provisioner.errors import ConfigError
from provisioner.model import SourceResult


def read_one(source, policy, now: datetime) -> SourceResult:
    """One configured source (an item of Settings.source_list)."""
    if source.type == "ldap":
        from provisioner.sources.ldap_source import read_ldap  # ldap3 only when used
        return read_ldap(source)
    if source.type == "hr":
        from provisioner.sources.hr_source import read_hr
        return read_hr(source, policy, now)
    from provisioner.sources.csv_source import read_csv
    return read_csv(source)


def key_attribute(source) -> str:
    """The attribute holding a source's key (an LDAP preset's key when none is set)."""
    if source.type == "ldap":
        from provisioner.sources.ldap_source import key_attribute as ldap_key
        return ldap_key(source)
    return source.key


def read_source(settings, now: datetime | None = None) -> SourceResult:
    """Every configured source, read and (when several) merged; `now` decides dated changes."""
    now = now or datetime.now(timezone.utc)
    return combine(settings, {s.name: read_one(s, settings.policy, now) for s in settings.source_list})


def combine(settings, results: dict[str, SourceResult]) -> SourceResult:
    """The one SourceResult the planner gets from each source's own (in source_list order)."""
    from provisioner.sources.merge import count, merge_sources

    sources = settings.source_list
    if len(results) == 1:
        (name, result), = results.items()
        # a plain CSV source keeps the plan's source section as it always was
        return result if sources[0].type == "csv" else replace(result, counts={name: count(result)})
    merge = settings.merge
    join = {s.name: merge.join.get(s.name) or key_attribute(s) for s in sources}
    merged = merge_sources(results, join, merge.authoritative or sources[0].name, merge.precedence)
    # a merged identity may take any attribute of any source (precedence
    # only orders them), and a list from one source stays a list
    declared = [r.attributes for r in results.values()]
    attributes = None if any(a is None for a in declared) else frozenset().union(*declared)
    multi = frozenset().union(*(r.multi_valued for r in results.values()))
    return replace(merged, attributes=attributes, multi_valued=multi)


@dataclass(frozen=True)
class SourceCheck:
    """What `provisioner check` reports for one source."""
    name: str
    type: str
    result: SourceResult | None     # None when it could not be read
    error: str | None = None

    @property
    def read(self) -> int:
        """Rows or entries read, whatever became of them."""
        r = self.result
        return len(r.identities) + len(r.rejected) + len(r.held) if r else 0


def check_sources(settings, now: datetime | None = None) -> tuple[list[SourceCheck], SourceResult | None]:
    """Read each source on its own (one failing does not hide the others), then combine them."""
    now = now or datetime.now(timezone.utc)
    checks = []
    for source in settings.source_list:
        try:
            checks.append(SourceCheck(source.name, source.type, read_one(source, settings.policy, now)))
        except ConfigError as exc:
            checks.append(SourceCheck(source.name, source.type, None, str(exc)))
    if any(c.result is None for c in checks):
        return checks, None
    return checks, combine(settings, {c.name: c.result for c in checks})
