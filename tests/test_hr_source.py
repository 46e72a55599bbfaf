"""The HR export source: CSV, JSON, JSON Lines and XLSX, with effective dates at an injected time."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from conftest import SCIM_TOKEN
from provisioner import flow
from provisioner.config import HrSourceSettings, PolicySettings, load_config
from provisioner.errors import ConfigError
from provisioner.sources.hr_source import read_hr
from provisioner.state import StateDB

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
COLUMNS = ["Personnel No", "email", "hire_date", "termination_date"]
PEOPLE = [
    ["H1", "h1@example.com", "2020-01-01", None],           # working
    ["H2", "h2@example.com", "2026-03-20", None],           # starts in 10 days: beyond prehire
    ["H3", "h3@example.com", "2026-03-12", None],           # starts in 2 days: within prehire
    ["H4", "h4@example.com", "2019-05-01", "2026-03-01"],   # left
    ["H5", "h5@example.com", "2021-01-01", "2026-03-15"],   # leaves in 5 days
    ["H6", "h6@example.com", "2026-06-01", None],           # starts beyond the lookahead
    ["H7", "h7@example.com", "2026-02-30", None],           # no such day
    ["H8", "h8@example.com", "2022-01-01", "2026-03-10"],   # last day today
]
POLICY = PolicySettings(prehire_days=3, lookahead_days=14)


def write(tmp_path: Path, fmt: str) -> Path:
    if fmt == "csv":
        path = tmp_path / "hr.csv"
        lines = [",".join(COLUMNS)] + [",".join(v or "" for v in p) for p in PEOPLE]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "json":
        path = tmp_path / "hr.json"
        path.write_text(json.dumps([dict(zip(COLUMNS, p)) for p in PEOPLE], indent=1))
    elif fmt == "jsonl":
        path = tmp_path / "hr.jsonl"
        path.write_text("".join(json.dumps(dict(zip(COLUMNS, p))) + "\n" for p in PEOPLE))
    else:
        path = tmp_path / "hr.xlsx"
        book = Workbook()
        sheet = book.active
        sheet.append(COLUMNS)
        for person in PEOPLE:
            # real date cells where the date exists; the impossible one stays text
            cells = [date.fromisoformat(v) if v and k.endswith("date") and v != "2026-02-30" else v
                     for k, v in zip(COLUMNS, person)]
            sheet.append(cells)
        book.save(path)
    return path


def hr(path: Path, **options) -> HrSourceSettings:
    return HrSourceSettings(type="hr", path=path, key="employee_id",
                            columns={"Personnel No": "employee_id"}, **options)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "xlsx"])
def test_bad_values_reject_the_record_in_every_format(tmp_path, fmt):
    records = [{"Personnel No": "H1", "email": "h1@example.com", "title": "Agent"},
               {"Personnel No": "H2", "email": "h2@example.com", "title": "Agent\x00"},
               {"Personnel No": "H3", "email": "h3@example.com", "title": "Agent\nAdmin"},
               {"Personnel No": "H4", "email": "h4@example.com", "title": "A" * 1025},
               {"Personnel No": "H5", "email": "h5@example.com;x@example.com", "title": "Agent"}]
    if fmt == "xlsx":
        path = tmp_path / "hr.xlsx"
        book = Workbook()
        book.active.append(list(records[0]))
        for record in records:
            # a spreadsheet cell cannot hold a NUL byte: a carriage return instead
            book.active.append([v.replace("\x00", "\rX") for v in record.values()])
        book.save(path)
        nul = "title holds a line break (list it in the source's multiline if it may)"
        allowed = ["H1", "H2", "H3", "H4"]
    else:
        path = tmp_path / f"hr.{fmt}"
        path.write_text(json.dumps(records) if fmt == "json" else
                        "".join(json.dumps(r) + "\n" for r in records))
        nul = "title holds a NUL byte"
        allowed = ["H1", "H3", "H4"]   # a NUL byte is never allowed
    result = read_hr(hr(path), POLICY, NOW)
    assert [i.key for i in result.identities] == ["H1"]
    assert [(r.key, r.reason) for r in result.rejected] == [
        ("H2", nul),
        ("H3", "title holds a line break (list it in the source's multiline if it may)"),
        ("H4", "title is 1025 characters long, over the source's max_value_length of 1024"),
        ("H5", "invalid email 'h5@example.com;x@example.com'")]
    relaxed = read_hr(hr(path, multiline=["title"], max_value_length=2000), POLICY, NOW)
    assert [i.key for i in relaxed.identities] == allowed


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "xlsx"])
def test_dates_on_either_side_of_today_in_every_format(tmp_path, fmt):
    result = read_hr(hr(write(tmp_path, fmt)), POLICY, NOW)
    state = {i.key: (i.attrs["active"], i.create_inactive) for i in result.identities}
    assert state == {"H1": ("true", False), "H3": ("false", True), "H4": ("false", False),
                     "H5": ("true", False), "H8": ("true", False)}
    assert result.held == ("H2", "H6")
    assert [(u.identity, u.change, u.date) for u in result.upcoming] == [
        ("H2", "starts", "2026-03-20"), ("H3", "starts", "2026-03-12"),
        ("H5", "leaves", "2026-03-15"), ("H8", "leaves", "2026-03-10")]
    assert [(r.key, r.reason) for r in result.rejected] == [
        ("H7", "invalid hire_date '2026-02-30' (expected YYYY-MM-DD)")]
    # rows point into the file: a CSV/XLSX line (header = 1), a JSON position
    assert result.rejected[0].row == (7 if fmt in ("json", "jsonl") else 8)
    h5 = next(i for i in result.identities if i.key == "H5")
    assert h5.attrs["termination_date"] == "2026-03-15" and h5.attrs["email"] == "h5@example.com"


def test_prehire_active_creates_enabled_and_a_later_day_moves_people(tmp_path):
    path = write(tmp_path, "csv")
    enabled = read_hr(hr(path), PolicySettings(prehire_days=3, prehire_active=True), NOW)
    h3 = next(i for i in enabled.identities if i.key == "H3")
    assert (h3.attrs["active"], h3.create_inactive) == ("true", False)
    # ten days on: H2 has started, H5 has left, H8's termination is past
    later = read_hr(hr(path), POLICY, datetime(2026, 3, 20, 8, 0, tzinfo=timezone.utc))
    state = {i.key: i.attrs["active"] for i in later.identities}
    assert state == {"H1": "true", "H2": "true", "H3": "true", "H4": "false", "H5": "false", "H8": "false"}
    assert later.held == ("H6",)


def test_dates_are_read_in_the_configured_time_zone(tmp_path):
    path = tmp_path / "hr.csv"
    path.write_text("Personnel No,email,hire_date\nZ1,z1@example.com,2026-03-10\n")
    evening_utc = datetime(2026, 3, 9, 20, 0, tzinfo=timezone.utc)  # 09:00 on the 10th in Auckland
    in_utc = read_hr(hr(path), PolicySettings(), evening_utc)
    in_auckland = read_hr(hr(path), PolicySettings(timezone="Pacific/Auckland"), evening_utc)
    assert (in_utc.identities, in_utc.held) == ((), ("Z1",))
    assert [i.attrs["active"] for i in in_auckland.identities] == ["true"]


def test_configured_date_format_and_iso_timestamps(tmp_path):
    path = tmp_path / "hr.jsonl"
    path.write_text('{"Personnel No": "D1", "hire_date": "01.02.2020", "termination_date": "05.03.2026"}\n'
                    '{"Personnel No": "D2", "hire_date": "2020-02-01T08:00:00Z"}\n'
                    '{"Personnel No": "D3", "hire_date": "02/01/2020"}\n'
                    'not json\n')
    result = read_hr(hr(path, date_format="%d.%m.%Y"), PolicySettings(), NOW)
    assert {i.key: (i.attrs["hire_date"], i.attrs["active"]) for i in result.identities} == {
        "D1": ("2020-02-01", "false"), "D2": ("2020-02-01", "true")}
    assert [(r.row, r.key, r.reason) for r in result.rejected] == [
        (3, "D3", "invalid hire_date '02/01/2020' (expected YYYY-MM-DD or '%d.%m.%Y')"),
        (4, None, "invalid JSON: Expecting value")]


def test_file_problems_are_one_sentence(tmp_path):
    broken = tmp_path / "hr.json"
    broken.write_text('[{"Personnel No": "A"},\n  oops]')
    with pytest.raises(ConfigError, match=r"hr.json: line 2: invalid JSON: Expecting value$"):
        read_hr(hr(broken), PolicySettings(), NOW)
    misnamed = tmp_path / "hr.jsonl"
    misnamed.write_text('{"Employee": "A", "email": "a@example.com"}\n')
    with pytest.raises(ConfigError, match=r"hr.jsonl: no record has 'employee_id' \(the key\); "
                                          r"the records have: Employee, email$"):
        read_hr(hr(misnamed), PolicySettings(), NOW)
    with pytest.raises(ConfigError, match=r"hr.xlsx: file not found$"):
        read_hr(hr(tmp_path / "hr.xlsx"), PolicySettings(), NOW)
    write(tmp_path, "xlsx")
    with pytest.raises(ConfigError, match=r"hr.xlsx: no sheet 'People' \(sheets: Sheet\)$"):
        read_hr(hr(tmp_path / "hr.xlsx", sheet="People"), PolicySettings(), NOW)
    with pytest.raises(Exception, match="cannot tell the format from 'hr.txt2'"):
        hr(tmp_path / "hr.txt2")


# --- through the flow, at an injected time ------------------------------------

MAPPING = """
correlate = ["userName"]
[attributes]
userName = "email"
active = { from = "active", equals = "true" }
"""


def hr_config(root: Path, scim_url: str, people: list[dict]) -> object:
    (root / "hr.json").write_text(json.dumps(people))
    (root / "dir.toml").write_text(MAPPING)
    (root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"
[source]
type = "hr"
name = "hr"
path = "hr.json"
key = "id"
[targets.dir]
type = "scim"
base_url = "{scim_url}"
token = "env:T_HR_SCIM_TOKEN"
mapping = "dir.toml"
[policy]
prehire_days = 3
max_disable_percent = 100
""")
    return load_config(root / "config.toml")


def test_waiting_rehire_keeps_their_account_and_a_prehire_is_created_disabled(tmp_path, scim_server,
                                                                             monkeypatch):
    monkeypatch.setenv("T_HR_SCIM_TOKEN", SCIM_TOKEN)
    people = [{"id": "E1", "email": "e1@example.com", "hire_date": "2020-01-01"},
              {"id": "E2", "email": "e2@example.com", "hire_date": "2020-01-01"}]
    settings = hr_config(tmp_path, scim_server.base_url, people)
    state = StateDB(settings.state.url)
    with flow.open_targets(settings) as handles:
        first = flow.build_plan(settings, state, handles, now=NOW).plan
        assert sorted((i.op, i.identity) for i in first.items) == [("create", "E1"), ("create", "E2")]
        flow.run_apply(settings, state, handles, first)

    # E1 left and is rehired in 10 days; E2 is gone from the export; E3 starts in 2 days
    people = [{"id": "E1", "email": "e1@example.com", "hire_date": "2026-03-20",
               "termination_date": "2025-12-31"},
              {"id": "E3", "email": "e3@example.com", "hire_date": "2026-03-12"}]
    settings = hr_config(tmp_path, scim_server.base_url, people)
    with flow.open_targets(settings) as handles:
        plan = flow.build_plan(settings, state, handles, now=NOW).plan
        assert sorted((i.op, i.identity) for i in plan.items) == [("create", "E3"), ("disable", "E2")]
        create = next(i for i in plan.items if i.op == "create")
        assert create.attrs["active"] is False and "created disabled" in create.reason
        doc = plan.to_dict()["source"]
        assert doc["upcoming"] == [
            {"identity": "E3", "change": "starts", "date": "2026-03-12", "targets": ["dir"]},
            {"identity": "E1", "change": "starts", "date": "2026-03-20", "targets": ["dir"]}]
        assert doc["sources"] == {"hr": {"identities": 1, "rejected": 0, "held": 1}}
        assert state.load_plan(plan.plan_id).to_dict() == plan.to_dict()  # stored with the plan
        flow.run_apply(settings, state, handles, plan)
    body = httpx.get(f"{scim_server.base_url}/Users", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}).json()
    users = {u["userName"]: u.get("active") for u in body["Resources"]}
    assert users == {"e1@example.com": True, "e2@example.com": False, "e3@example.com": False}
    state.close()
