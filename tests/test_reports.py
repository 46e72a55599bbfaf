"""Plan reports for people without a terminal: the HTML page in a real headless Chromium,
the CSV read back with csv, the Markdown parsed as tables; hostile values stay inert."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys

import pytest
from markdown_it import MarkdownIt

from provisioner.reports import plan_csv, plan_markdown
from report_plans import FORMULA, HOSTILE, big_plan

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def stored(workdir):
    """The big plan in a state DB, and a config the CLI can open it with (built once: it takes seconds)."""
    tmp_path = workdir
    plan = big_plan(tmp_path)
    (tmp_path / "config.toml").write_text(f"""
[state]
url = "sqlite:///{tmp_path / 'state.db'}"
[source]
type = "csv"
path = "people.csv"
key = "employee_id"
[targets.directory]
type = "scim"
base_url = "http://127.0.0.1:9"
token = "env:HOME"
mapping = "directory.toml"
""", encoding="utf-8")
    return plan


def cli(tmp_path, *args, check=0):
    env = {**os.environ}
    env.pop("PROVISIONER_DB", None)
    proc = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == check, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def chromium(tmp_path, *args: str) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def visible_items(dom: str) -> list[str]:
    rows = re.findall(r'<tr class="item"[^>]*>', dom)
    return [r for r in rows if " hidden" not in r]


def test_the_html_report_renders_its_counts_and_filters_in_headless_chromium(workdir, stored):
    tmp_path = workdir
    out = cli(tmp_path, "show", "latest", "--format", "html", "-o", "plan.html")
    assert "html report written to plan.html" in out.stderr and out.stdout == ""
    page = tmp_path / "plan.html"
    text = page.read_text(encoding="utf-8")
    assert len(stored.items) >= 2000
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text) and "@import" not in text
    assert HOSTILE not in text and "&lt;script&gt;document.title=" in text

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert len(visible_items(dom)) == len(stored.items)
    assert "<title>Plan big1 · provisioner</title>" in dom  # the hostile value did not run
    for name, summary in stored.targets.items():
        row = re.search(rf'<tr data-target="{name}"><th>{name}</th>(.*?)</tr>', dom).group(1)
        cells = re.findall(r'<td class="n"[^>]*>(?:<a[^>]*>)?(\d+)', row)
        assert cells == [str(summary.accounts), *(str(summary.counts.get(op, 0)) for op in
                         ("delete", "create", "update", "disable", "enable", "manual", "drift", "conflict")), str(summary.unmanaged)]
    assert "Target portal is BLOCKED" in dom and "20 disables exceed max_disable_count = 10" in dom
    assert dom.index('id="summary"') < dom.index('id="attention"') < dom.index('id="items"')
    assert dom.count('type="checkbox"') == 151  # the manual and conflict items, as a checklist

    # the page reads its filter from the URL: only directory's updates that mention "shift"
    filtered = chromium(tmp_path, "--dump-dom", page.as_uri() + "#target=directory&op=update&q=shift")
    shown = visible_items(filtered)
    assert len(shown) == 1 and 'data-op="update"' in shown[0]
    assert re.search(r'<b id="shown">1</b> of 2080 items shown', filtered)
    by_op = chromium(tmp_path, "--dump-dom", page.as_uri() + "#op=disable")
    assert len(visible_items(by_op)) == 20

    screenshot = tmp_path / "plan.png"
    chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,1400",
             page.as_uri() + "#op=update&q=title")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_csv_report_is_one_row_per_item_and_attribute(workdir, stored):
    tmp_path = workdir
    cli(tmp_path, "show", "big1", "--format", "csv", "-o", "plan.csv")
    data = (tmp_path / "plan.csv").read_bytes()
    same = data == plan_csv(stored).encode()  # (a plain == would make pytest diff 1 MB on failure)
    assert same and data.count(b"\r\n") > 2000  # RFC 4180 line ends, as written
    rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    assert list(rows[0]) == ["plan_id", "target", "op", "identity", "account", "attribute", "from", "to",
                             "why", "status", "error"]
    assert len(rows) == sum(max(1, len(i.changes)) for i in stored.items)
    assert {r["plan_id"] for r in rows} == {"big1"}
    [hostile] = [r for r in rows if r["identity"] == "E01200"]
    assert hostile["attribute"] == "title" and hostile["from"] == "Old title" and hostile["to"] == HOSTILE
    [formula] = [r for r in rows if r["identity"] == "E01201"]
    assert formula["to"] == "'" + FORMULA  # a spreadsheet shows it, never evaluates it
    [multiline] = [r for r in rows if r["identity"] == "E01202"]
    assert multiline["to"] == "Lead | Ops\nnight shift"
    manual = [r for r in rows if r["op"] == "manual"]
    assert len(manual) == 150 and all(r["attribute"] == "active" and r["to"] == "false" for r in manual)
    [conflict] = [r for r in rows if r["op"] == "conflict"]  # no attribute: one row all the same
    assert conflict["attribute"] == "" and "matches 2 accounts" in conflict["why"]


def test_the_markdown_report_is_valid_tables_with_what_needs_a_person(workdir, stored):
    tmp_path = workdir
    text = cli(tmp_path, "show", "big1", "--format", "markdown", "-o", "plan.md").stderr
    markdown = (tmp_path / "plan.md").read_text(encoding="utf-8")
    same = markdown == plan_markdown(stored)
    assert same
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    assert not [t for t in tokens if t.type.startswith("html")]
    tables, widths, row = [], set(), 0
    for token in tokens:
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            row = 0
        elif token.type in ("th_open", "td_open"):
            row += 1
        elif token.type == "tr_close":
            tables[-1].append(row)
    assert len(tables) == 3  # summary, rejected rows, items that need a person
    for counts in tables:
        assert len(set(counts)) == 1  # every row has the header's number of cells
    assert "| portal | 20 | 0 | 5 | 0 | 20 |" in markdown and "BLOCKED: 20 disables exceed" in markdown
    assert "&lt;script&gt;" in markdown and HOSTILE not in markdown
    assert "… and 51 more items (see the HTML or CSV report)" in markdown  # 151, capped at 100
    assert "markdown report written" in text


def test_json_stays_and_text_cannot_go_to_a_file(workdir, stored):
    tmp_path = workdir
    as_flag = cli(tmp_path, "show", "big1", "--json").stdout
    assert as_flag == cli(tmp_path, "show", "big1", "--format", "json").stdout
    assert as_flag.startswith('{\n  "plan_id": "big1"')
    refused = cli(tmp_path, "show", "big1", "-o", "x.txt", check=2)
    assert "-o/--output needs --format html, markdown, csv or json" in refused.stderr
