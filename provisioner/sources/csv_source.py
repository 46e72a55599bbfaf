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
import re
from pathlib import Path

from provisioner.config import CsvSourceSettings
from provisioner.errors import ConfigError
from provisioner.files import read_input
from provisioner.model import Identity, Rejected, SourceResult

# pragmatic, not RFC 5322: one @, something before it, a dotted domain, no spaces
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


def read_csv(settings: CsvSourceSettings) -> SourceResult:
    """Read the file into identities (in file order) and rejected rows.

    Keys are compared case-insensitively when looking for duplicates: HR
    exports are hand-edited and 'e0007' next to 'E0007' is one person typed
    twice, so every row sharing the key is rejected (which one is right is
    unknown). Identity.key keeps the key exactly as written.
    """
    path = settings.path
    rows = csv.reader(io.StringIO(_read_text(path, settings.encoding), newline=""),
                      delimiter=settings.delimiter, strict=True)
    header, header_line = _header(rows, path)
    names = _column_names(header, settings, path)
    width = len(header)
    key_attr = settings.key
    key_index = names.index(key_attr)
    required = [a for a in dict.fromkeys(settings.required) if a != key_attr]
    emails = [a for a in dict.fromkeys(settings.emails) if a in names]

    # rows in file order: an Identity; a Rejected when the cells cannot be
    # trusted (so neither can their key); or (line, key, problems)
    entries: list = []
    first_line: dict[str, int] = {}        # folded key -> line it first appeared on
    duplicates: dict[str, list[int]] = {}  # folded key -> all its lines, when > 1
    line = header_line
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
            entries.append(Rejected(start, None, f"cannot parse the row: {why}"))
            continue
        start, line = line + 1, rows.line_num
        if len(cells) > width:
            if any(c.strip() for c in cells):
                guess = cells[key_index].strip() or None
                entries.append(Rejected(start, guess, f"row has {len(cells)} cells, the header has {width}"))
            continue
        attrs = {n: v for n, v in zip(names, map(str.strip, cells)) if v}
        attrs.pop("", None)  # cells under a header without a name
        if not attrs:
            continue  # blank line
        key = attrs.get(key_attr)
        problems = [] if key else [f"missing key {key_attr!r}"]
        problems += [f"missing required value {a!r}" for a in required if a not in attrs]
        problems += [f"invalid {a} {attrs[a]!r}" for a in emails
                     if a in attrs and not _EMAIL.fullmatch(attrs[a])]
        if key:
            folded = key.casefold()
            first = first_line.setdefault(folded, start)
            if first != start:
                duplicates.setdefault(folded, [first]).append(start)
        entries.append((start, key, problems) if problems else Identity(key=key, attrs=attrs, row=start))

    identities, rejected = [], []
    for entry in entries:
        if isinstance(entry, Rejected):
            rejected.append(entry)
            continue
        if isinstance(entry, Identity):
            if not duplicates or entry.key.casefold() not in duplicates:
                identities.append(entry)
                continue
            entry = (entry.row, entry.key, [])
        start, key, problems = entry
        others = [n for n in duplicates.get(key.casefold(), ()) if n != start] if key else []
        if others:
            rows_word = "row" if len(others) == 1 else "rows"
            problems.append(f"duplicate key {key!r} (also on {rows_word} {', '.join(map(str, others))})")
        rejected.append(Rejected(start, key, "; ".join(problems)))
    return SourceResult(identities=tuple(identities), rejected=tuple(rejected))


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
