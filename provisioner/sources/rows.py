"""Row validation every source shares: key, required values, e-mails, duplicate keys.

A source turns its records into (number, attrs) pairs, in its own order, and
hands them here with any records it already could not read (Rejected). The
number is what a person looks the record up by: a file line, an entry's
position in an LDAP search.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable, Mapping

from provisioner.model import Identity, Rejected, SourceResult

DEFAULT_MAX_LENGTH = 1024
# every character str.splitlines() breaks a line at
LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def validate_rows(records: Iterable[Rejected | tuple[int, Mapping]], key_attr: str,
                  required: Iterable[str] = (), emails: Iterable[str] = (), *, unit: str = "row",
                  check: Callable[[Mapping], list[str]] | None = None,
                  max_length: int = DEFAULT_MAX_LENGTH, multiline: Iterable[str] = ()) -> SourceResult:
    """Identities (in input order) and rejected records.

    Keys are compared case-insensitively when looking for duplicates: 'e0007'
    next to 'E0007' is one person typed twice, so every record sharing the key
    is rejected (which one is right is unknown). Identity.key keeps the key
    exactly as written. `check` adds a source's own problems with a record.

    Every value must be free of NUL bytes, at most `max_length` characters,
    and on one line unless its attribute is listed in `multiline`: a target
    would otherwise store a truncated, split or smuggled value.
    """
    required = [a for a in dict.fromkeys(required) if a != key_attr]
    emails = list(dict.fromkeys(emails))
    multiline = frozenset(multiline)

    # in order: an Identity; a Rejected as given; or (number, key, problems, attrs)
    entries: list = []
    first_seen: dict[str, int] = {}        # folded key -> number it first appeared on
    duplicates: dict[str, list[int]] = {}  # folded key -> all its numbers, when > 1
    for record in records:
        if isinstance(record, Rejected):
            entries.append(record)
            continue
        number, attrs = record
        bad_values = _value_problems(attrs, max_length, multiline)
        key = attrs.get(key_attr)
        # a key that cannot be trusted is not repeated in the reason
        key = key if isinstance(key, str) and key_attr not in bad_values else None
        problems = [] if key or key_attr in bad_values else [f"missing key {key_attr!r}"]
        problems += bad_values.values()
        problems += [f"missing required value {a!r}" for a in required if a not in attrs]
        for a in emails:
            value = attrs.get(a)
            if value is None or a in bad_values:
                continue
            problems += [f"invalid {a} {v!r}" for v in ((value,) if value.__class__ is str else _values(value))
                         if not valid_email(v)]
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


def _value_problems(attrs: Mapping, max_length: int, multiline: frozenset[str]) -> dict[str, str]:
    """attribute -> what is wrong with (one of) its values; the value itself is never quoted."""
    if not multiline:
        # one look at the whole record: a CSV row's values are all text and nearly
        # always clean; only a record with something to report takes the walk below
        try:
            joined = "\t".join(attrs.values())  # a tab is none of the characters looked for
        except TypeError:  # a list (LDAP multi-valued) or a number
            joined = None
        if (joined is not None and "\x00" not in joined and not LINE_BREAK.search(joined)
                and (len(joined) <= max_length or max(map(len, attrs.values())) <= max_length)):
            return {}
    problems = {}
    for name, value in attrs.items():
        for text in _values(value):
            if "\x00" in text:
                problems[name] = f"{name} holds a NUL byte"
            elif name not in multiline and LINE_BREAK.search(text):
                problems[name] = (f"{name} holds a line break (list it in the source's "
                                  "multiline if it may)")
            elif len(text) > max_length:
                problems[name] = (f"{name} is {len(text)} characters long, over the source's "
                                  f"max_value_length of {max_length}")
            else:
                continue
            break
    return problems


# --- e-mail addresses ----------------------------------------------------------
# Pragmatic, not RFC 5322: a dot-atom local part, a dotted host name, nothing
# around them. Non-ASCII letters are allowed (internationalized addresses),
# but not spelled with compatibility characters (full-width letters), nor
# invisible ones, nor mixing scripts within a label ("exаmple" with a
# Cyrillic а): those are look-alikes of another address.

_LOCAL_SYMBOLS = frozenset("!#$%&'*+/=?^_`{|}~-")
# scripts that are written together in one word
_SCRIPT_FAMILY = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "IDEOGRAPHIC": "CJK"}


# The same rules for an all-ASCII address, which has no look-alikes to weigh:
# one regular expression instead of a walk over every character (most addresses).
_ASCII_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+(?!-)(?=[A-Za-z0-9-]*[A-Za-z-])[A-Za-z0-9-]{1,63}(?<!-)")


def valid_email(value: str) -> bool:
    if value.isascii():
        return _ASCII_EMAIL.fullmatch(value) is not None
    local, at, domain = value.rpartition("@")
    if not at or not local or "@" in local:
        return False
    if unicodedata.normalize("NFKC", value) != unicodedata.normalize("NFC", value):
        return False
    atoms, labels = local.split("."), domain.split(".")
    if not all(atoms) or len(labels) < 2 or labels[-1].isdigit():
        return False
    if not all(_label_char(c) or c in _LOCAL_SYMBOLS for atom in atoms for c in atom):
        return False
    if not all(0 < len(label) <= 63 and not label.startswith("-") and not label.endswith("-")
               and all(_label_char(c) or c == "-" for c in label) for label in labels):
        return False
    return all(len(_scripts(part)) <= 1 for part in (local, *labels))


def _label_char(c: str) -> bool:
    """An ASCII letter or digit, or a non-ASCII letter, mark or digit."""
    if c.isascii():
        return c.isalnum()
    return unicodedata.category(c)[0] in "LMN"


def _scripts(text: str) -> set[str]:
    scripts = set()
    for c in text:
        if unicodedata.category(c)[0] == "L":
            script = unicodedata.name(c, "UNKNOWN").split()[0]
            scripts.add(_SCRIPT_FAMILY.get(script, script))
    return scripts
