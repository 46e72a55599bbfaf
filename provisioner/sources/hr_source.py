"""The source of truth as an HR system's export: CSV, JSON (array or JSON Lines), XLSX.

Beyond the rows themselves (validated like the CSV source: key, required
values, e-mails, duplicates), an HR export carries effective dates, and they
decide who exists today, in `policy.timezone`:

- hire_date after today, more than `policy.prehire_days` ahead: left out,
  and *held* -- an existing account of theirs (a rehire waiting to start) is
  neither created nor disabled;
- hire_date within `prehire_days`: included, `active` = policy.prehire_active
  (an inactive prehire's account is created disabled);
- termination_date before today: included with `active` = "false";
- otherwise `active` = "true".

The source sets the canonical attribute `active` to "true"/"false" (mappings
use `active = { from = "active", equals = "true" }`) and rewrites both dates
as YYYY-MM-DD. An unparseable date rejects the row with its reason. Starts and
leaves within `policy.lookahead_days` are listed as upcoming changes.

Row numbers: the file line for CSV, the position in the array (1-based) or
the line for JSON Lines, the sheet row for XLSX.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo

from provisioner.config import CsvSourceSettings, HrSourceSettings, PolicySettings
from provisioner.errors import ConfigError
from provisioner.files import read_input
from provisioner.model import Identity, Rejected, SourceResult, Upcoming
from provisioner.sources.csv_source import read_csv
from provisioner.sources.rows import validate_rows

ACTIVE = "active"


def read_hr(settings: HrSourceSettings, policy: PolicySettings, now: datetime) -> SourceResult:
    zone = ZoneInfo(policy.timezone)
    dates = (settings.hire_date, settings.termination_date)

    def check(attrs: Mapping) -> list[str]:
        problems = []
        for name in dates:
            if attrs.get(name) is not None and _parse_date(attrs[name], settings.date_format, zone) is None:
                expected = "YYYY-MM-DD" + (f" or {settings.date_format!r}" if settings.date_format else "")
                problems.append(f"invalid {name} {attrs[name]!r} (expected {expected})")
        return problems

    if settings.format == "csv":
        csv_settings = CsvSourceSettings(
            path=settings.path, key=settings.key, delimiter=settings.delimiter,
            encoding=settings.encoding, required=settings.required, emails=settings.emails,
            columns=settings.columns, max_value_length=settings.max_value_length,
            multiline=settings.multiline)
        rows = read_csv(csv_settings, check=check)
        fields = set(rows.attributes or ())
    else:
        fields = set()
        records = (_json_records(settings, fields) if settings.format in ("json", "jsonl")
                   else _xlsx_records(settings, fields))
        rows = validate_rows(records, settings.key, settings.required, settings.emails, check=check,
                             max_length=settings.max_value_length, multiline=settings.multiline)
    rows = replace(rows, attributes=frozenset(fields | {ACTIVE}))  # the dates decide `active`
    return _apply_dates(rows, settings, policy, now.astimezone(zone).date(), zone)


def _apply_dates(rows: SourceResult, settings: HrSourceSettings, policy: PolicySettings,
                 today: date, zone: ZoneInfo) -> SourceResult:
    horizon = today + timedelta(days=policy.lookahead_days)
    identities: list[Identity] = []
    held: list[str] = []
    upcoming: list[Upcoming] = []
    for identity in rows.identities:
        attrs = dict(identity.attrs)
        hire, leave = (_parse_date(attrs.get(n), settings.date_format, zone)
                       for n in (settings.hire_date, settings.termination_date))
        for name, value in ((settings.hire_date, hire), (settings.termination_date, leave)):
            if value is not None:
                attrs[name] = value.isoformat()
        create_inactive = False
        if hire is not None and hire > today:
            if hire <= horizon:
                upcoming.append(Upcoming(identity.key, "starts", hire.isoformat(), attrs))
            if (hire - today).days > policy.prehire_days:
                held.append(identity.key)
                continue
            attrs[ACTIVE] = "true" if policy.prehire_active else "false"
            create_inactive = not policy.prehire_active
        elif leave is not None and leave < today:
            attrs[ACTIVE] = "false"
        else:
            attrs[ACTIVE] = "true"
            if leave is not None and leave <= horizon:
                upcoming.append(Upcoming(identity.key, "leaves", leave.isoformat(), attrs))
        identities.append(Identity(identity.key, attrs, identity.row, create_inactive))
    return SourceResult(identities=tuple(identities), rejected=rows.rejected, held=tuple(held),
                        upcoming=tuple(upcoming), attributes=rows.attributes)


def _parse_date(value: Any, fmt: str | None, zone: ZoneInfo) -> date | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if fmt:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    # a timestamp with an offset is a moment: its day is the day in the configured zone
    return (moment.astimezone(zone) if moment.tzinfo else moment).date()


def _cell(value: Any) -> str | None:
    """A JSON or spreadsheet value as the trimmed text every source hands on."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value).strip() or None


def _attrs(record: Mapping, columns: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in record.items():
        text = _cell(value)
        name = str(name).strip()
        if text is not None and name:
            out[columns.get(name, name)] = text
    return out


def _json_records(settings: HrSourceSettings, fields: set[str]) -> Iterator[Rejected | tuple[int, dict]]:
    """The records; `fields` collects every field name seen (after `columns`), empty or not."""
    path = settings.path
    data = read_input(path, str(path), "JSON file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: the file is not UTF-8 text") from None
    if settings.format == "json" and text.lstrip().startswith("["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
        numbered = enumerate(doc, 1)
    else:
        numbered = _json_lines(text, path)
    seen: dict[str, None] = {}
    for number, record in numbered:
        if isinstance(record, Rejected):
            yield record
        elif not isinstance(record, dict):
            yield Rejected(number, None, f"expected an object, got {type(record).__name__}")
        else:
            attrs = _attrs(record, settings.columns)
            seen.update(dict.fromkeys(attrs))
            fields.update(settings.columns.get(str(k).strip(), str(k).strip()) for k in record)
            if attrs:
                yield number, attrs
    # like a CSV header without the key column: the config is wrong, not every row
    if seen and settings.key not in seen:
        raise ConfigError(f"{path}: no record has {settings.key!r} (the key); the records have: "
                          f"{', '.join(list(seen)[:20])}")


def _json_lines(text: str, path) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            # one broken line costs that person, not the whole export
            yield number, Rejected(number, None, f"invalid JSON: {exc.msg}")


def _xlsx_records(settings: HrSourceSettings, fields: set[str]) -> Iterator[tuple[int, dict]]:
    """The rows; `fields` gets the header's column names (after `columns`)."""
    from openpyxl import load_workbook  # only XLSX exports pay for importing it

    path = settings.path
    read_input(path, str(path), "XLSX file")  # the same one-line errors as the other formats
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, ... for a damaged file
        raise ConfigError(f"{path}: cannot read the workbook: {exc}") from None
    try:
        if settings.sheet is not None:
            if settings.sheet not in book.sheetnames:
                raise ConfigError(f"{path}: no sheet {settings.sheet!r} (sheets: {', '.join(book.sheetnames)})")
            sheet = book[settings.sheet]
        else:
            sheet = book.worksheets[0]
        header: list[str] | None = None
        for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
            if header is None:
                if any(_cell(v) for v in values):
                    header = [(_cell(v) or "") for v in values]
                    fields.update(settings.columns.get(h, h) for h in header if h)
                    if settings.key not in [settings.columns.get(h, h) for h in header]:
                        raise ConfigError(f"{path}: no column {settings.key!r} (the key) in the "
                                          f"header row {number}")
                continue
            attrs = _attrs(dict(zip(header, values)), settings.columns)
            attrs.pop("", None)
            if attrs:
                yield number, attrs
        if header is None:
            raise ConfigError(f"{path}: the sheet is empty (expected a header row)")
    finally:
        book.close()
