"""SCIM filter text -> a predicate over an identity's source attributes.

    pred = compile_filter('department eq "Support" and not (title co "intern")')
    pred({"department": "support", "title": "Agent"})   # True

Semantics (the filter runs over SOURCE attribute names, not SCIM ones):

- attribute names match the attrs keys case-insensitively (an exact match is
  tried first); `name.givenName` looks up the key "name.givenName";
- string comparisons are case-insensitive; `co`/`sw`/`ew` take a string or
  number literal;
- `gt ge lt le` compare numerically when both sides read as numbers, else as
  case-insensitive strings (so ISO dates order correctly);
- `eq 42` compares numerically; `eq "42"` compares text (zip "01234" stays
  distinct from 1234);
- `eq true` / `eq false` match "true"/"yes"/"1" / "false"/"no"/"0" or a bool;
- `pr` is true when the attribute is present and non-blank; `eq null` is its
  negation and `ne null` its synonym;
- an absent attribute fails every comparison; `ne x` is always `not (eq x)`,
  so it is true for an absent attribute;
- a multi-valued attribute (a list, e.g. LDAP `multi_valued`) matches when
  ANY of its values does (RFC 7644 §3.4.2.2): `groups eq "agents"` is true
  when one value is "agents", `groups ne "agents"` when none is;
- `and` binds tighter than `or`; `not (...)` needs its parentheses (SCIM).

Complex filters (`emails[type eq "work"]`) and schema URIs are refused.
"""

from __future__ import annotations

import json
import operator
import re
from typing import Any, Callable, Mapping

from scim2_filter_parser import ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser

Predicate = Callable[[Mapping[str, Any]], bool]

_MISSING = object()
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})
_ORDER = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


class _Number(str):
    """A number literal's text, so `eq 42` and `eq "42"` stay distinguishable."""


class _Lexer(SCIMLexer):
    # The stock lexer reads "42" as two one-digit numbers, "trueName" as TRUE +
    # "Name", knows no string escapes, and hands the parser `true` and "true"
    # as the same string. These rules replace the stock ones in place (sly keeps
    # rule order); literal tokens carry typed values the parser passes through.
    tokens = SCIMLexer.tokens
    @_(r"(?i:false)(?![a-zA-Z0-9_$-])")  # noqa: F821 (sly injects `_`)
    def FALSE(self, t):
        t.value = False
        return t

    @_(r"(?i:true)(?![a-zA-Z0-9_$-])")  # noqa: F821 (sly injects `_`)
    def TRUE(self, t):
        t.value = True
        return t

    @_(r"(?i:null)(?![a-zA-Z0-9_$-])")  # noqa: F821 (sly injects `_`)
    def NULL(self, t):
        t.value = None
        return t

    @_(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![a-zA-Z0-9_$.-])")  # noqa: F821 (sly injects `_`)
    def NUMBER(self, t):
        t.value = _Number(t.value)
        return t

    @_(r'"(?:[^"\\]|\\.)*"')  # noqa: F821 (sly injects `_`)
    def COMP_VALUE(self, t):
        try:
            t.value = json.loads(t.value, strict=False)
        except ValueError:
            raise ValueError(f"bad escape in the string at position {t.index}") from None
        return t

    def error(self, t):
        char = t.value[0]
        if char == '"':
            raise ValueError(f"unterminated string at position {t.index}")
        raise ValueError(f"unexpected character {char!r} at position {t.index}")


def compile_filter(text: str) -> Predicate:
    """Compile a SCIM filter once; raises ValueError with one sentence if it is bad."""
    try:
        return _compile(_parse(text))
    except ValueError as exc:
        raise ValueError(f"invalid scope filter '{text}': {exc}") from None


def _parse(text: str) -> ast.Filter:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the filter is empty")
    last: list = [None]

    def tokens():
        # Remember the token the parser choked on: its own error names it only
        # inside an unfriendly repr.
        for tok in _Lexer().tokenize(text):
            last[0] = tok
            yield tok
        last[0] = None

    try:
        tree = SCIMParser().parse(tokens())
    except ValueError:
        raise
    except Exception:  # SCIMParserError, or whatever sly raises on a bad stream
        tok = last[0]
        if tok is None:
            raise ValueError("the filter ends too early") from None
        typed = tok.type in ("COMP_VALUE", "TRUE", "FALSE", "NULL")
        shown = json.dumps(tok.value, ensure_ascii=False) if typed else f"'{tok.value}'"
        raise ValueError(f"unexpected {shown} at position {tok.index}") from None
    if tree is None:
        raise ValueError("the filter is empty")
    return tree


def _compile(node: Any) -> Predicate:
    if isinstance(node, ast.Filter):
        if node.namespace is not None:
            raise ValueError("complex attribute filters like emails[type eq \"work\"] are not supported")
        if isinstance(node.expr, ast.LogExpr):
            return _compile_chain(node)
        inner = _compile(node.expr)
        if node.negated:
            return lambda attrs: not inner(attrs)
        return inner
    if isinstance(node, ast.AttrExpr):
        return _compile_comparison(node)
    raise ValueError(f"unsupported expression {type(node).__name__}")


def _compile_chain(node: ast.Filter) -> Predicate:
    # The stock grammar gives `and` and `or` equal precedence (left to right),
    # so `a or b and c` arrives as `(a or b) and c`. Parenthesised groups come
    # wrapped in an extra Filter, so flattening the unwrapped LogExprs recovers
    # the written sequence; it is regrouped here as an OR of ANDs (RFC 7644).
    operands: list = []
    ops: list[str] = []

    def walk(n):
        if isinstance(n, ast.Filter) and not n.negated and n.namespace is None \
                and isinstance(n.expr, ast.LogExpr):
            walk(n.expr.expr1)
            ops.append(n.expr.op.lower())
            walk(n.expr.expr2)
        else:
            operands.append(_compile(n))

    walk(node)
    groups = [[operands[0]]]
    for op, pred in zip(ops, operands[1:]):
        if op == "and":
            groups[-1].append(pred)
        else:
            groups.append([pred])
    return _fold_with(_or, [_fold_with(_and, g) for g in groups])


def _fold_with(join, preds: list[Predicate]) -> Predicate:
    result = preds[0]
    for pred in preds[1:]:
        result = join(result, pred)
    return result


def _and(f: Predicate, g: Predicate) -> Predicate:
    return lambda attrs: f(attrs) and g(attrs)


def _or(f: Predicate, g: Predicate) -> Predicate:
    return lambda attrs: f(attrs) or g(attrs)


def _attr_name(path: ast.AttrPath) -> str:
    if not isinstance(path.attr_name, str):
        raise ValueError("complex attribute filters like emails[type eq \"work\"] are not supported")
    if path.uri is not None:
        raise ValueError(f"schema URIs ({path.uri}) are not supported: use the source attribute name")
    if path.sub_attr is not None:
        return f"{path.attr_name}.{path.sub_attr.value}"
    return path.attr_name


def _getter(name: str) -> Callable[[Mapping[str, Any]], tuple]:
    """attrs -> the attribute's non-blank values (a list attribute gives each), () when absent."""
    folded = name.casefold()

    def get(attrs):
        value = attrs.get(name, _MISSING)
        if value is _MISSING:
            for key in attrs:
                if key.casefold() == folded:
                    value = attrs[key]
                    break
            else:
                return ()
        values = value if isinstance(value, (list, tuple)) else (value,)
        return tuple(v for v in values
                     if v is not None and not (v.__class__ is str and not v.strip()))
    return get


def _text(value: Any) -> str:
    if value.__class__ is str:
        return value.casefold()
    if value is True or value is False:
        return "true" if value else "false"
    return str(value).casefold()


def _as_number(value: Any) -> int | float | None:
    if value.__class__ is bool:
        return None
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    if not _NUMBER.fullmatch(text):
        return None
    # ints stay ints: Python compares int with float exactly, floats lose digits
    return float(text) if any(c in text for c in ".eE") else int(text)


def _compile_comparison(node: ast.AttrExpr) -> Predicate:
    op = node.value.lower()
    name = _attr_name(node.attr_path)
    get = _getter(name)
    if op == "pr":
        return lambda attrs: bool(get(attrs))
    literal = node.comp_value.value
    if op == "ne":
        eq = _compile_eq(get, literal, name)
        return lambda attrs: not eq(attrs)
    if op == "eq":
        return _compile_eq(get, literal, name)
    if literal is None or literal is True or literal is False:
        shown = json.dumps(literal)
        raise ValueError(f"'{op}' cannot compare with {shown}: use eq or ne")
    want = literal.casefold()
    if op in _ORDER:
        return _compile_order(get, _ORDER[op], want, _as_number(literal))
    test = {"co": operator.contains, "sw": str.startswith, "ew": str.endswith}.get(op)
    if test is None:
        raise ValueError(f"unknown operator '{op}'")

    def match(attrs):
        return any(test(_text(value), want) for value in get(attrs))
    return match


def _compile_eq(get, literal, name: str) -> Predicate:
    if literal is None:
        return lambda attrs: not get(attrs)
    if literal is True or literal is False:
        words = _TRUE_WORDS if literal else _FALSE_WORDS

        def is_bool(value):
            if value is True or value is False:
                return value is literal
            return _text(value) in words

        def eq_bool(attrs):
            return any(is_bool(value) for value in get(attrs))
        return eq_bool
    if isinstance(literal, _Number):
        number = _as_number(literal)

        def eq_number(attrs):
            return any(_as_number(value) == number for value in get(attrs))
        return eq_number
    want = literal.casefold()
    if not want.strip():
        return lambda attrs: any(_text(value) == want for value in get(attrs))

    def eq_text(attrs):
        value = attrs.get(name)
        if value.__class__ is str:
            # the usual record: one text under the name as spelled (a scope is checked for every
            # person). Equal to a literal that is not blank, it is not blank either, which get requires
            return value.casefold() == want
        return any(_text(value) == want for value in get(attrs))
    return eq_text


def _compile_order(get, compare, want: str, number) -> Predicate:
    def one(value):
        if number is not None:
            mine = _as_number(value)
            if mine is not None:
                return compare(mine, number)
        return compare(_text(value), want)

    def order(attrs):
        return any(one(value) for value in get(attrs))
    return order


def filter_attributes(text: str) -> tuple[str, ...]:
    """The attribute names a (valid) filter reads, in order of first use."""
    names: dict[str, None] = {}

    def walk(node):
        if isinstance(node, ast.Filter):
            walk(node.expr)
        elif isinstance(node, ast.LogExpr):
            walk(node.expr1)
            walk(node.expr2)
        elif isinstance(node, ast.AttrExpr):
            names.setdefault(_attr_name(node.attr_path))
    walk(_parse(text))
    return tuple(names)
