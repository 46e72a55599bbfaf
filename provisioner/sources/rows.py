"""Row validation every source shares: key, required values, e-mails, duplicate keys.

A source turns its records into (number, attrs) pairs, in its own order, and
hands them here with any records it already could not read (Rejected). The
number is what a person looks the record up by: a file line, an entry's
position in an LDAP search.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

from provisioner.model import Identity, Rejected, SourceResult

# pragmatic, not RFC 5322: one @, something before it, a dotted domain, no spaces
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


def validate_rows(records: Iterable[Rejected | tuple[int, Mapping]], key_attr: str,
                  required: Iterable[str] = (), emails: Iterable[str] = (), *, unit: str = "row",
                  check: Callable[[Mapping], list[str]] | None = None) -> SourceResult:
    """Identities (in input order) and rejected records.

    Keys are compared case-insensitively when looking for duplicates: 'e0007'
    next to 'E0007' is one person typed twice, so every record sharing the key
    is rejected (which one is right is unknown). Identity.key keeps the key
    exactly as written. `check` adds a source's own problems with a record.
    """
    required = [a for a in dict.fromkeys(required) if a != key_attr]
    emails = list(dict.fromkeys(emails))

    # in order: an Identity; a Rejected as given; or (number, key, problems, attrs)
    entries: list = []
    first_seen: dict[str, int] = {}        # folded key -> number it first appeared on
    duplicates: dict[str, list[int]] = {}  # folded key -> all its numbers, when > 1
    for record in records:
        if isinstance(record, Rejected):
            entries.append(record)
            continue
        number, attrs = record
        key = attrs.get(key_attr)
        key = key if isinstance(key, str) else None
        problems = [] if key else [f"missing key {key_attr!r}"]
        problems += [f"missing required value {a!r}" for a in required if a not in attrs]
        problems += [f"invalid {a} {v!r}" for a in emails
                     for v in _values(attrs.get(a)) if not EMAIL.fullmatch(v)]
        if check is not None:
            problems += check(attrs)
        if key:
            folded = key.casefold()
            first = first_seen.setdefault(folded, number)
            if first != number:
                duplicates.setdefault(folded, [first]).append(number)
        entries.append((number, key, problems, attrs) if problems else Identity(key=key, attrs=attrs, row=number))

    identities, rejected = [], []
    for entry in entries:
        if isinstance(entry, Rejected):
            rejected.append(entry)
            continue
        if isinstance(entry, Identity):
            if not duplicates or entry.key.casefold() not in duplicates:
                identities.append(entry)
                continue
            entry = (entry.row, entry.key, [], entry.attrs)
        number, key, problems, attrs = entry
        others = [n for n in duplicates.get(key.casefold(), ()) if n != number] if key else []
        if others:
            word = unit if len(others) == 1 else unit + "s"
            problems.append(f"duplicate key {key!r} (also on {word} {', '.join(map(str, others))})")
        rejected.append(Rejected(number, key, "; ".join(problems), attrs=attrs))
    return SourceResult(identities=tuple(identities), rejected=tuple(rejected))


def _values(value) -> list[str]:
    if value is None:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, (list, tuple)) else [str(value)]
