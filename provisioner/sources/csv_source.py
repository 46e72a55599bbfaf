"""The source of truth as a CSV export (typically from an HR system).

Row numbers everywhere (Identity.row, Rejected.row) are the physical line in
the file where the row starts, counting the header as line 1, so an admin can
jump to it in an editor even when quoted cells span several lines.

A bad row is rejected on its own with a reason and the rest of the file is
still read; a problem with the file as a whole (missing, undecodable, no key
column, unusable header) is a ConfigError.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import replace
from pathlib import Path

from provisioner.config import CsvSourceSettings
from provisioner.errors import ConfigError
from provisioner.files import read_input
from provisioner.model import Rejected, SourceResult
from provisioner.sources.rows import validate_rows


def read_csv(settings: CsvSourceSettings, check=None) -> SourceResult:
    """Read the file into identities (in file order) and rejected rows.

    Keys are compared case-insensitively when looking for duplicates (see
    rows.validate_rows): HR exports are hand-edited. `check(attrs)` adds a
    caller's own problems with a row (the HR source's dates).
    """
    path = settings.path
    rows = csv.reader(io.StringIO(_read_text(path, settings.encoding), newline=""),
                      delimiter=settings.delimiter, strict=True)
    header, header_line = _header(rows, path)
    names = _column_names(header, settings, path)
    width = len(header)
    key_attr = settings.key
    key_index = names.index(key_attr)
    emails = [a for a in settings.emails if a in names]
    result = validate_rows(_records(rows, names, width, key_index, header_line),
                           key_attr, settings.required, emails, check=check,
                           max_length=settings.max_value_length, multiline=settings.multiline)
    return replace(result, attributes=frozenset(n for n in names if n))


def _records(rows, names: list[str], width: int, key_index: int, line: int):
    """(line, attrs) per row; a Rejected for a row whose cells cannot be trusted."""
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            # strict parsing: a stray or unclosed quote costs this row, visibly,
            # instead of silently gluing the following people into one cell
            if rows.line_num == line:
                break  # nothing consumed: end of input
            start, line = line + 1, rows.line_num
            why = "a quoted cell is never closed" if "end of data" in str(exc) else str(exc)
            yield Rejected(start, None, f"cannot parse the row: {why}")
            continue
        start, line = line + 1, rows.line_num
        if len(cells) > width:
            if any(c.strip() for c in cells):
                guess = cells[key_index].strip() or None
                yield Rejected(start, guess, f"row has {len(cells)} cells, the header has {width}")
            continue
        attrs = {n: v for n, v in zip(names, map(str.strip, cells)) if v}
        attrs.pop("", None)  # cells under a header without a name
        if attrs:  # else a blank line
            yield start, attrs


def _read_text(path: Path, encoding: str) -> str:
    # decoding the whole file up front pins a bad byte to its exact line,
    # which decoding chunk by chunk while parsing cannot
    data = read_input(path, str(path), "CSV file")
    # Excel writes a BOM; accept it always
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not valid {encoding} text "
            f"(set source.encoding to the file's encoding)") from None


def _header(rows, path: Path) -> tuple[list[str], int]:
    """The first non-blank row, and the line it ends on."""
    try:
        for cells in rows:
            if any(c.strip() for c in cells):
                return cells, rows.line_num
    except csv.Error as exc:
        raise ConfigError(f"{path}: line {rows.line_num}: cannot read the header: {exc}") from None
    raise ConfigError(f"{path}: the file is empty (expected a header row)")


def _column_names(header: list[str], settings: CsvSourceSettings, path: Path) -> list[str]:
    """Attribute name per column; "" for a column without a header (ignored)."""
    headers = [h.strip().lstrip("\ufeff").strip() for h in header]
    names = [settings.columns.get(h, h) if h else "" for h in headers]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            j = seen[name]
            where = (f"columns {j + 1} and {i + 1}" if headers[j] == headers[i] == name else
                     f"columns {j + 1} ({headers[j]!r}) and {i + 1} ({headers[i]!r})")
            raise ConfigError(f"{path}: the header has column {name!r} twice ({where})")
        seen[name] = i
    listing = ", ".join(n for n in names if n)
    if settings.key not in seen:
        raise ConfigError(f"{path}: no column {settings.key!r} (the key); the header has: {listing}")
    for attr in settings.required:
        if attr not in seen:
            raise ConfigError(f"{path}: no column {attr!r} (listed in source.required); "
                              f"the header has: {listing}")
    return names
