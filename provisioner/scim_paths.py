"""SCIM-style attribute paths on nested JSON documents.

Grammar: `a`, `a.b`, `a[0].b` (list index), `a[type eq "work"].b` (the list
element whose sub-attribute equals a JSON literal), and an extension prefix
`urn:...:User:a.b` (the URN up to its last ':' is a key of the document).
Names match case-insensitively, as SCIM attribute names do.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Callable, Mapping, NamedTuple

_NAME = re.compile(r"[A-Za-z$][\w$-]*\Z")
_FILTER = re.compile(r"\s*([A-Za-z$][\w$-]*)\s+eq\s+(.+?)\s*\Z", re.IGNORECASE | re.DOTALL)


class Segment(NamedTuple):
    name: str
    index: int | None = None           # a[0]
    match: tuple[str, Any] | None = None   # a[type eq "work"] -> ("type", "work")

    @property
    def selects(self) -> bool:
        return self.index is not None or self.match is not None


@lru_cache(maxsize=1024)
def parse(path: str) -> tuple[Segment, ...]:
    """The segments of `path`; raises ValueError naming the path when malformed."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"invalid attribute path {path!r}: empty")
    path = path.strip()
    segments: list[Segment] = []
    rest = path
    if path[:4].lower() == "urn:":
        head = path.split("[", 1)[0]
        cut = head.rfind(":")
        urn, rest = path[:cut], path[cut + 1:]
        if not rest:
            raise ValueError(f"invalid attribute path {path!r}: nothing after the schema URN")
        segments.append(Segment(urn))
    pos = 0
    while True:
        end = pos
        while end < len(rest) and rest[end] not in ".[":
            end += 1
        name = rest[pos:end]
        if not _NAME.match(name):
            raise ValueError(f"invalid attribute path {path!r}: bad attribute name {name!r}")
        index = match = None
        if end < len(rest) and rest[end] == "[":
            close = _closing_bracket(rest, end, path)
            index, match = _selector(rest[end + 1:close], path)
            end = close + 1
        segments.append(Segment(name, index, match))
        if end == len(rest):
            return tuple(segments)
        if rest[end] != ".":
            raise ValueError(f"invalid attribute path {path!r}: expected '.' after ']'")
        pos = end + 1


def _closing_bracket(text: str, start: int, path: str) -> int:
    quoted = escaped = False
    for i in range(start + 1, len(text)):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == "]" and not quoted:
            return i
    raise ValueError(f"invalid attribute path {path!r}: unclosed '['")


def _selector(text: str, path: str) -> tuple[int | None, tuple[str, Any] | None]:
    if text.strip().isascii() and text.strip().isdigit():
        return int(text), None
    m = _FILTER.match(text)
    if m:
        try:
            return None, (m.group(1), json.loads(m.group(2)))
        except ValueError:
            pass
    raise ValueError(
        f"invalid attribute path {path!r}: a selector is an index like [0] "
        f"or a filter like [type eq \"work\"], not [{text}]")


def _key(obj: Mapping, name: str) -> str | None:
    """The key of `obj` that `name` designates: exact first, then ignoring case."""
    if name in obj:
        return name
    folded = name.casefold()
    for key in obj:
        if isinstance(key, str) and key.casefold() == folded:
            return key
    return None


def _same(a: Any, b: Any) -> bool:
    # filter literals compare like SCIM `eq` on caseExact=false sub-attributes
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return a == b and type(a) is type(b)


def _find(items: list, match: tuple[str, Any]) -> int | None:
    attr, literal = match
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            key = _key(item, attr)
            if key is not None and _same(item[key], literal):
                return i
    return None


def _select(value: Any, seg: Segment) -> Any:
    if not isinstance(value, list):
        return None
    if seg.index is not None:
        return value[seg.index] if seg.index < len(value) else None
    i = _find(value, seg.match)
    return None if i is None else value[i]


def get_path(doc: Mapping, path: str) -> Any:
    """The value at `path`, or None when any part of it is missing.

    An attribute name applied to a list (`emails.value`) collects that
    attribute from every element, as a SCIM filter reads it.
    """
    return getter(path)(doc)


@lru_cache(maxsize=1024)
def getter(path: str) -> Callable[[Any], Any]:
    """get_path for one path, parsed once: reading 100,000 accounts calls it per attribute.

    The usual step, a plain dict holding the name as spelled, is one lookup;
    anything else (another case, a list, a Mapping type) takes `_get`'s way.
    """
    segs = parse(path)
    steps = tuple((seg.name, seg if seg.selects else None) for seg in segs)
    if len(steps) == 1 and steps[0][1] is None:
        name = steps[0][0]

        def get_top(doc: Any) -> Any:  # most mapped attributes: userName, title, active
            if doc.__class__ is dict and name in doc:
                return doc[name]
            return _get(doc, segs)
        return get_top

    def get(doc: Any) -> Any:
        value = doc
        for n, (name, selector) in enumerate(steps):
            if value.__class__ is dict and name in value:
                value = value[name]
                if selector is not None:
                    value = _select(value, selector)
            else:
                return _get(value, segs[n:])
            if value is None:
                return None
        return value
    return get


def _get(doc: Any, segs: tuple[Segment, ...]) -> Any:
    value: Any = doc
    for seg in segs:
        if isinstance(value, list):
            keys = [(v, _key(v, seg.name)) for v in value if isinstance(v, Mapping)]
            value = [v[k] for v, k in keys if k is not None and v[k] is not None] or None
        elif isinstance(value, Mapping):
            key = _key(value, seg.name)
            value = None if key is None else value[key]
        else:
            return None
        if seg.selects:
            value = _select(value, seg)
        if value is None:
            return None
    return value


def set_path(doc: dict, path: str, value: Any) -> None:
    """Set `path` to `value`, creating the dicts, lists and filtered elements on the way.

    An index past the end of a list pads it with empty objects; a filter that
    selects nothing appends an element carrying the filter's attribute.
    """
    segs = parse(path)
    node: Any = doc
    for n, seg in enumerate(segs):
        last = n == len(segs) - 1
        if not isinstance(node, dict):
            raise ValueError(f"cannot set {path!r}: {seg.name!r} is inside a non-object value")
        key = _key(node, seg.name) or seg.name
        if not seg.selects:
            if last:
                node[key] = value
                return
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
            continue
        items = node.get(key)
        if items is None:
            items = node[key] = []
        if not isinstance(items, list):
            raise ValueError(f"cannot set {path!r}: {seg.name!r} is not a list")
        if seg.index is not None:
            i = seg.index
            while len(items) <= i:
                items.append({})
        else:
            i = _find(items, seg.match)
            if i is None:
                items.append({seg.match[0]: seg.match[1]})
                i = len(items) - 1
        if last:
            items[i] = value
            return
        if items[i] is None:
            items[i] = {}
        node = items[i]


def remove_path(doc: dict, path: str) -> None:
    """Delete the key or list element at `path`; nothing happens when it is missing."""
    segs = parse(path)
    parent = _get(doc, segs[:-1])
    seg = segs[-1]
    if not isinstance(parent, dict):
        return
    key = _key(parent, seg.name)
    if key is None:
        return
    if not seg.selects:
        del parent[key]
        return
    items = parent[key]
    if isinstance(items, list):
        element = _select(items, seg)
        if element is not None:
            items[:] = [x for x in items if x is not element]


def _join(segs: tuple[Segment, ...]) -> str:
    parts = []
    for seg in segs:
        if seg.index is not None:
            parts.append(f"{seg.name}[{seg.index}]")
        elif seg.match is not None:
            literal = json.dumps(seg.match[1], ensure_ascii=False)
            parts.append(f"{seg.name}[{seg.match[0]} eq {literal}]")
        else:
            parts.append(seg.name)
    if segs[0].name[:4].lower() == "urn:" and len(parts) > 1:
        return parts[0] + ":" + ".".join(parts[1:])
    return ".".join(parts)


def top_level(path: str) -> str:
    """The top-level attribute `path` lives in (the URN for an extension path)."""
    return parse(path)[0].name


def has_selector(path: str) -> bool:
    return any(seg.selects for seg in parse(path))


def strip_selectors(path: str) -> str:
    """`emails[0].value` -> `emails.value`: the form a SCIM filter can name."""
    return _join(tuple(Segment(s.name) for s in parse(path)))
