"""mappings/<target>.toml -> a compiled Mapping: which identities a target gets, and what.

File format::

    # mappings/directory.toml
    scope = 'department eq "Support"'     # optional SCIM filter over SOURCE attribute names
    correlate = ["userName"]              # optional; default: the first attribute below

    [attributes]                          # required, non-empty; target path = where its value comes from
    userName = "email"                                    # shorthand: copy that source attribute
    "name.givenName" = { from = "given_name" }
    "emails[0].value" = { from = "email", transform = "lower" }
    displayName = { template = "{given_name} {family_name}" }
    title = { from = "title", default = "Agent" }
    active = { from = "status", equals = "active" }
    locale = { constant = "en-US" }
    department = { from = "dept", lookup = { SUP = "Support", OPS = "Operations" }, default = "Other" }
    nickName = { from = "nick", transform = ["trim", "upper"] }

Top-level keys:

- `scope`: a SCIM filter (see provisioner.scope) over source attribute names;
  identities it rejects are out of this target's scope. Absent: everyone.
- `correlate`: target paths used, in order, to match an identity without a
  link to an existing account. Each must be a key of [attributes].
- `[attributes]`: target attribute path -> entry, in the order they are sent.

An entry is a source attribute name (a string), or a table with exactly one of

- `from = "attr"`: the source attribute's value (names match exactly);
- `template = "{a} {b}"`: text with `{attr}` substitutions. Field names must
  start with a letter (letters, digits, `_`, `-`); no `{a.b}`, `{a[0]}`, `{0}`,
  `{a!r}` or `{a:>5}`. `{{` and `}}` are literal braces. If any referenced
  attribute is absent or blank the whole value is absent; source values are
  inserted as-is, never expanded again;
- `constant = ...`: a fixed string, number or boolean (no other keys allowed);

and optionally, applied in this order:

1. `transform`: a name or a list of names applied in order: lower, trim, upper;
2. `lookup = { KEY = value, ... }`: replace a value found in the table (exact
   match, after transforms); a value not in the table is replaced by
   `default` when one is set, else kept unchanged;
3. `default`: used when the value is absent or blank;
4. `equals = "x"` or `["x", "y"]`: the result becomes a boolean, true when the
   value equals one of them ignoring case (absent -> false).

A source attribute that is a list (an LDAP `multi_valued` one) must be made
one value: `pick = "first"` (the first), `pick = "join"` (all, joined with
`separator`, default ", "), and/or `matching = "*@example.com"` (only the
values matching the glob, ignoring case). `source_problems` names entries
that read a list without saying so, and any source attribute (in `from`, a
template or `scope`) that no source provides.

`case_insensitive = true|false` says whether the target compares the value
ignoring case; by default that is true for `userName` and `emails...` paths.
`fold_accents = true` compares ignoring case AND accents ("José" matches
"jose"), e.g. for a name used to correlate.

`on_drift = "revert" | "adopt" | "alert"` says what a plan does when the
target's value differs from what this tool last wrote there while the source
value is unchanged (someone changed it in the vendor's console): `revert`
(the default) writes the source value back; `adopt` leaves the target's value;
`alert` leaves it too and adds a `drift` item to the plan (never applied). A
source change is always written. See docs/lifecycle.md.

A source attribute name may contain dots: the flow adds what other targets
remembered with their links as `links.<target>.<key>` (e.g.
`extension = { from = "links.onecloud.extension" }`).

The `active` attribute must be boolean: use `equals`, a true/false
`constant`, or a `lookup` whose values and `default` are all true/false.

Mistakes raise ConfigError naming the file and key, e.g.
`mappings/directory.toml: attributes.title: unknown transform 'titlecase' (known: lower, trim, upper)`.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import string

from collections.abc import Mapping as _Map
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import ConfigError
from .files import key_position, read_toml, split_key
from .model import ACTIVE, FOLD
from .scope import compile_filter, filter_attributes

Render = Callable[[_Map[str, Any]], Any]

TRANSFORMS: dict[str, Callable[[str], str]] = {"lower": str.lower, "trim": str.strip, "upper": str.upper}
_TOP_KEYS = ("attributes", "correlate", "scope")
_ENTRY_KEYS = ("case_insensitive", "constant", "default", "equals", "fold_accents", "from", "lookup",
               "matching", "on_drift", "pick", "separator", "template", "transform")
DRIFT_POLICIES = ("revert", "adopt", "alert")
PICKS = ("first", "join")
_KINDS = ("from", "template", "constant")
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = (str, bool, int, float)
_MISSING = object()


@dataclass(frozen=True)
class Mapping:
    name: str
    path: Path
    attributes: tuple[str, ...]
    correlate: tuple[str, ...]
    _render: tuple[tuple[str, Render], ...] = field(repr=False, compare=False)
    _scope: Callable[[_Map[str, Any]], bool] | None = field(repr=False, compare=False)
    _case: _Map[str, bool | str] = field(repr=False, compare=False)
    _sources: _Map[str, tuple[str, ...]] = field(repr=False, compare=False)
    # target paths whose entry says how a list becomes one value (pick/matching)
    _picks: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _scope_attributes: tuple[str, ...] = field(default=(), repr=False, compare=False)
    # target path -> "revert" | "adopt" | "alert", as written (a path not here reverts, untracked)
    _drift: _Map[str, str] = field(default_factory=dict, repr=False, compare=False)
    # the paths whose last written value the state DB keeps (those with an on_drift)
    drift_tracked: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def on_drift(self, path: str) -> str:
        """What a plan does about a value changed on the target: "revert", "adopt" or "alert"."""
        return self._drift.get(path, "revert")


    def in_scope(self, attrs: _Map[str, Any]) -> bool:
        return True if self._scope is None else self._scope(attrs)

    def render(self, attrs: _Map[str, Any]) -> dict[str, Any]:
        """Target path -> value (None when the identity gives it no value)."""
        return {path: compute(attrs) for path, compute in self._render}

    def case_insensitive(self, path: str) -> bool | str:
        """False, True, or model.FOLD (case and accents ignored), for model.normalize."""
        explicit = self._case.get(path)
        if explicit is not None:
            return explicit
        return path == "userName" or path.startswith("emails")

    def sources_of(self, path: str) -> tuple[str, ...]:
        return self._sources.get(path, ())

    def source_problems(self, provided: Iterable[str], multi_valued: Iterable[str] = ()) -> list[str]:
        """One sentence per source attribute this mapping reads that the sources
        do not provide, or that is a list where the entry takes one value."""
        provided = list(dict.fromkeys(provided))
        multi = set(multi_valued)
        folded = {name.casefold() for name in provided}
        problems = []
        for path in self.attributes:
            key = f"attributes.{_key(path)}"
            for name in self._sources.get(path, ()):
                if name not in provided:
                    problems.append(f"{self.path}: {key}: {_unprovided(name, provided)}")
                elif name in multi and path not in self._picks:
                    problems.append(
                        f"{self.path}: {key}: source attribute '{name}' is multi-valued and {path} "
                        f"takes one value: add pick = \"first\" (the first value), pick = \"join\" "
                        f"(all, joined with ', ') or matching = \"*@example.com\" (the first that matches)")
        for name in self._scope_attributes:
            if name.casefold() not in folded:
                problems.append(f"{self.path}: scope: {_unprovided(name, provided)}")
        return problems


def load_mapping(path: Path) -> Mapping:
    path = Path(path)
    where = str(path)
    doc, text = read_toml(path, where, "mapping file")

    def fail(key: str, what: str):
        at = key_position(text, split_key(key))
        # `from None`: the sentence says it all; a chained ValueError adds nothing
        raise ConfigError(f"{where}: {key}: {what}" + (f" (line {at[0]}, column {at[1]})" if at else "")) from None

    for key in doc:
        if key not in _TOP_KEYS:
            fail(_key(key), _unknown("key", key, _TOP_KEYS))

    entries = doc.get("attributes")
    if not isinstance(entries, dict) or not entries:
        fail("attributes", "missing" if entries is None else "must be a non-empty table of target attributes")

    render: list[tuple[str, Render]] = []
    case: dict[str, bool | str] = {}
    sources: dict[str, tuple[str, ...]] = {}
    picks: set[str] = set()
    drift: dict[str, str] = {}
    for target, spec in entries.items():
        key = f"attributes.{_key(target)}"
        if not target.strip() or target != target.strip():
            fail(key, "a target attribute path must not be blank or padded with spaces")
        try:
            compute, srcs, ci = _compile_entry(spec, is_active=(target == ACTIVE))
        except ValueError as exc:
            fail(key, str(exc))
        render.append((target, compute))
        sources[target] = srcs
        if isinstance(spec, dict) and ("pick" in spec or "matching" in spec):
            picks.add(target)
        if ci is not None:
            case[target] = ci
        if isinstance(spec, dict) and "on_drift" in spec:
            if spec["on_drift"] not in DRIFT_POLICIES:
                fail(f"{key}.on_drift", f"must be one of {', '.join(DRIFT_POLICIES)}, "
                                         f"got {spec['on_drift']!r}")
            if target == ACTIVE:
                fail(f"{key}.on_drift", "active follows the source: enabling and disabling are "
                                         "never drift")
            # any policy written down is tracked: an explicit revert says why its update is planned
            drift[target] = spec["on_drift"]

    attributes = tuple(entries)
    correlate = doc.get("correlate", [attributes[0]])
    if isinstance(correlate, str):
        correlate = [correlate]
    if not isinstance(correlate, list) or not correlate:
        fail("correlate", "must be a non-empty list of attribute names")
    for item in correlate:
        if item not in entries:
            fail("correlate", f"{item!r} is not a mapped attribute (mapped: {', '.join(attributes)})")

    scope, scope_attributes = None, ()
    if "scope" in doc:
        if not isinstance(doc["scope"], str):
            fail("scope", "must be a SCIM filter string")
        try:
            scope = compile_filter(doc["scope"])
            scope_attributes = filter_attributes(doc["scope"])
        except ValueError as exc:
            fail("scope", str(exc))

    return Mapping(name=path.stem, path=path, attributes=attributes, correlate=tuple(correlate),
                   _render=tuple(render), _scope=scope, _case=case, _sources=sources,
                   _picks=frozenset(picks), _scope_attributes=scope_attributes, _drift=drift,
                   drift_tracked=frozenset(drift))


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else '"' + name.replace('"', '\\"') + '"'


def _unprovided(name: str, provided: list[str]) -> str:
    close = difflib.get_close_matches(name, provided, n=1)
    if close:
        return f"no source provides '{name}'; did you mean '{close[0]}'?"
    shown = ", ".join(sorted(provided)[:30]) + (", ..." if len(provided) > 30 else "")
    return f"no source provides '{name}' (the sources provide: {shown or 'nothing'})"


def _unknown(what: str, name: str, known) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown {what} '{name}'{hint}"


def _compile_entry(spec: Any, is_active: bool) -> tuple[Render, tuple[str, ...], bool | str | None]:
    """An entry -> (attrs -> value, the source attributes it reads, explicit case rule)."""
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        raise ValueError("must be a source attribute name or a table such as { from = \"...\" }")
    for key in spec:
        if key not in _ENTRY_KEYS:
            raise ValueError(_unknown("key", key, _ENTRY_KEYS))
    kinds = [k for k in _KINDS if k in spec]
    if len(kinds) != 1:
        raise ValueError("needs exactly one of 'from', 'template' or 'constant'"
                         + (f", not {' and '.join(kinds)}" if kinds else ""))
    kind = kinds[0]

    ci = spec.get("case_insensitive")
    if ci is not None and not isinstance(ci, bool):
        raise ValueError("case_insensitive must be true or false")
    fold = spec.get("fold_accents")
    if fold is not None and not isinstance(fold, bool):
        raise ValueError("fold_accents must be true or false")
    if fold and ci is False:
        raise ValueError("fold_accents = true ignores case too: drop case_insensitive = false")
    if fold:
        ci = FOLD

    one = _list_reducer(spec)
    if kind == "constant":
        value = spec["constant"]
        extra = [k for k in ("transform", "lookup", "default", "equals", "pick", "matching", "separator")
                 if k in spec]
        if extra:
            raise ValueError(f"a constant cannot have '{extra[0]}'")
        if not isinstance(value, _SCALAR):
            raise ValueError("constant must be a string, number or boolean")
        if is_active and not isinstance(value, bool):
            raise ValueError("active must be boolean: use a true/false constant")
        return (lambda attrs: value), (), ci

    if kind == "from":
        name = spec["from"]
        if not isinstance(name, str) or not name.strip():
            raise ValueError("'from' must name a source attribute")
        fetch, srcs = _from(name, one), (name,)
    else:
        fetch, srcs = _template(spec["template"], one)

    steps = _transforms(spec.get("transform", []))
    lookup = spec.get("lookup")
    if lookup is not None:
        if not isinstance(lookup, dict) or not all(isinstance(v, _SCALAR) for v in lookup.values()):
            raise ValueError("lookup must be a table of source value = target value")
    has_default = "default" in spec
    default = spec.get("default")
    if has_default and not isinstance(default, _SCALAR):
        raise ValueError("default must be a string, number or boolean")
    equals = spec.get("equals")
    if equals is not None:
        if isinstance(equals, str):
            equals = [equals]
        if not isinstance(equals, list) or not equals or not all(isinstance(e, str) for e in equals):
            raise ValueError("equals must be a string or a list of strings")
        equals = frozenset(e.casefold() for e in equals)
    elif is_active and not (lookup and has_default and isinstance(default, bool)
                            and all(isinstance(v, bool) for v in lookup.values())):
        raise ValueError("active must be boolean: use 'equals', a true/false constant, "
                         "or a lookup whose values and default are all true/false")
    return _pipeline(fetch, steps, lookup, has_default, default, equals), srcs, ci


def _same(value: Any) -> Any:
    """A value passed as it is (an entry without pick or matching)."""
    return value


def _list_reducer(spec: dict) -> Callable[[Any], Any]:
    """How a source value that is a list (an LDAP multi_valued attribute) becomes one value.

    `matching` (a glob, ignoring case) keeps the values that match; `pick`
    takes the first of them ("first", the default once `matching` is set) or
    joins them all with `separator` ("join"). A plain value counts as a list
    of one. Without either key a list passes unchanged: `source_problems`
    refuses such a mapping before any plan is made.
    """
    pick = spec.get("pick")
    matching = spec.get("matching")
    separator = spec.get("separator")
    if pick is not None and pick not in PICKS:
        raise ValueError(f"pick must be one of {', '.join(PICKS)}, not {pick!r}")
    if matching is not None and (not isinstance(matching, str) or not matching.strip()):
        raise ValueError("matching must be a glob pattern such as \"*@example.com\"")
    if separator is not None and (pick != "join" or not isinstance(separator, str)):
        raise ValueError("separator goes with pick = \"join\" and must be a string")
    if pick is None and matching is None:
        return _same
    pattern = matching.casefold() if matching else None
    joiner = ", " if separator is None else separator

    def one(value):
        if value is None:
            return None
        values = [v if v.__class__ is str else str(v)
                  for v in (value if isinstance(value, (list, tuple)) else (value,)) if v is not None]
        if pattern is not None:
            values = [v for v in values if fnmatch.fnmatchcase(v.casefold(), pattern)]
        if not values:
            return None
        return joiner.join(values) if pick == "join" else values[0]
    return one


def _from(name: str, one: Callable[[Any], Any]) -> Render:
    if one is _same:
        def fetch_plain(attrs):
            return attrs.get(name)
        fetch_plain.attribute = name  # lets _pipeline read it without this extra call
        return fetch_plain

    def fetch(attrs):
        return one(attrs.get(name))
    return fetch


def _template(text: Any, one: Callable[[Any], Any]) -> tuple[Render, tuple[str, ...]]:
    if not isinstance(text, str):
        raise ValueError("template must be a string")
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template ({exc}); write {{{{ and }}}} for literal braces") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in pieces:
        if name is not None:
            if conversion or spec or not _FIELD.fullmatch(name):
                shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise ValueError(f"template field {shown} is not allowed: only {{attribute}} with a "
                                 "name starting with a letter")
        parts.append((literal, name))
    names = tuple(dict.fromkeys(n for _, n in parts if n is not None))
    if not names:
        raise ValueError("template references no attribute: use 'constant' for fixed text")
    parts_t = tuple(parts)

    # Substitution is a join over pre-split parts, never str.format: source
    # values are data, and a value like "{x}" must come out as written.
    def fetch(attrs):
        out = []
        for literal, name in parts_t:
            out.append(literal)
            if name is not None:
                value = one(attrs.get(name))
                if value is None:
                    return None
                value = value if value.__class__ is str else str(value)
                if not value.strip():
                    return None
                out.append(value)
        return "".join(out)
    return fetch, names


def _transforms(names: Any) -> tuple[Callable[[str], str], ...]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("transform must be a name or a list of names")
    for name in names:
        if name not in TRANSFORMS:
            raise ValueError(f"unknown transform '{name}' (known: {', '.join(sorted(TRANSFORMS))})")
    return tuple(TRANSFORMS[n] for n in names)


def _pipeline(fetch: Render, steps, lookup, has_default: bool, default, equals) -> Render:
    if not steps and lookup is None and default is None and equals is None:
        # the usual entry (a copied attribute, a template): the same as compute below with
        # nothing to apply, in one call instead of several per attribute and person
        name = getattr(fetch, "attribute", None)
        if name is not None:
            def copied(attrs):  # a copied attribute: fetch_plain's lookup, done here
                value = attrs.get(name)
                if value.__class__ is str and not value.strip():
                    return None
                return value
            return copied

        def plain(attrs):
            value = fetch(attrs)
            if value.__class__ is str and not value.strip():
                return None
            return value
        return plain

    def compute(attrs):
        value = fetch(attrs)
        if value is not None:
            if value.__class__ is str:
                for step in steps:
                    value = step(value)
                if not value.strip():
                    value = None
            if lookup is not None and value is not None:
                found = lookup.get(value if value.__class__ is str else str(value), _MISSING)
                if found is not _MISSING:
                    value = found
                elif has_default:
                    value = default
        if value is None:
            value = default
        if equals is not None:
            return value is not None and str(value).casefold() in equals
        return value
    return compute

