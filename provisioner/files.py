"""Reading the files a person points the tool at, with one-sentence errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .errors import ConfigError
from .secrets import redact


def read_input(path: Path, shown: str, kind: str) -> bytes:
    """The file's bytes, or ConfigError naming it as `shown` and saying what it should be."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a directory, not a {kind}") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the {kind}: {exc.strerror}") from None


def load_toml(path: Path, shown: str, kind: str) -> dict:
    """Parse a TOML file; mistakes become ConfigError with the line to look at."""
    return read_toml(path, shown, kind)[0]


def read_toml(path: Path, shown: str, kind: str) -> tuple[dict, str]:
    """The parsed TOML file and its text (for key_position); mistakes as in load_toml."""
    data = read_input(path, shown, kind)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{shown}: line {line}: invalid TOML: the file is not UTF-8 text") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if at:
            message = f"{message[:at.start()]} (column {at.group(2)})"
            line = int(at.group(1))
        else:
            message = re.sub(r"\s*\(at end of document\)$", " (at the end of the file)", message)
            line = text.count("\n") + 1
        raise ConfigError(redact(f"{shown}: line {line}: invalid TOML: {message}")) from None


# Where a key is written, for messages about it: tomllib keeps no positions, so
# the text is scanned for table headers and `key =` lines (inline tables and
# multi-line values are not entered; their outer key is found instead).
_PART = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_PART}(?:[ \t]*\.[ \t]*{_PART})*"
_HEADER = re.compile(rf"[ \t]*(\[\[?)[ \t]*({_DOTTED})[ \t]*\]")
_ASSIGN = re.compile(rf"[ \t]*({_DOTTED})[ \t]*=")


def split_key(dotted: str) -> list[str]:
    """'a."b.c".d' -> ['a', 'b.c', 'd'] (TOML's dotted-key spelling, as error messages write keys)."""
    parts = []
    for match in re.finditer(_PART, dotted):
        part = match.group(0)
        if part[0] == '"':
            part = part[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif part[0] == "'":
            part = part[1:-1]
        parts.append(part)
    return parts


def key_position(text: str, path: list) -> tuple[int, int] | None:
    """(line, column) where the key at `path` (names, and indexes into arrays of tables)
    or else the nearest enclosing key or table is written; None when it is not in the text."""
    table: list = []
    arrays: dict[tuple, int] = {}
    best, best_depth = None, 0
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            table = _indexed(split_key(header.group(2)), arrays, new=header.group(1) == "[[")
            found, column = table, header.start(2) + 1
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            found, column = table + split_key(assign.group(1)), assign.start(1) + 1
        depth = _common(found, path)
        if depth == len(found) and depth > best_depth:
            best, best_depth = (number, column), depth
            if depth == len(path):
                break
    return best


def _indexed(parts: list[str], arrays: dict[tuple, int], new: bool) -> list:
    """A header's path with the current index of each array of tables it goes through."""
    out: list = []
    for i, part in enumerate(parts):
        out.append(part)
        key = tuple(parts[:i + 1])
        if new and i == len(parts) - 1:
            arrays[key] = arrays.get(key, -1) + 1
        if key in arrays:
            out.append(arrays[key])
    return out


def _common(a: list, b: list) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n
