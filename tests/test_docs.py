"""The README and docs/ stay true: every config example is accepted by the real
`provisioner check --offline`, every command line parses with the real CLI, every
relative link leads somewhere, and the README stays a short front page whose first
lines are the set-up commands .ci/run keeps honest.

How a ```toml block is checked is decided by an HTML comment on the line just
before it (invisible on GitHub):

- none: a config. A block with a `[state]` table is a whole config and runs as it
  is; any other is a fragment laid over a small base config (the README's: a CSV
  source and a SCIM target `directory`), replacing the base's tables it names
  (`[source]` also by `[[sources]]`).
- `<!-- docs-test: mapping -->`: a mapping, run as the base's `directory` mapping.
- `<!-- docs-test: config-only, REASON -->`: a config whose source cannot be read
  here (a directory server, an export file): loaded with the loader `check` uses
  (keys, types, secret references, the cleartext rule) and its mappings compiled,
  but no source read.
- `<!-- docs-test: skip, REASON -->`: not a config (the reason says what it is).

Each run gets a fresh directory with an export holding every column the shipped
mappings read, the shipped mappings, a value for every `env:NAME` the config
names and a file for every `file:` reference (an absolute one is moved into the
directory)."""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provisioner.cli import cli
from provisioner.config import load_config
from provisioner.connectors import connectors
from provisioner.mapping import load_mapping

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
         *sorted((ROOT / "provisioner" / "connectors").glob("*/README.md"))]
README_LIMIT = 15 * 1024

BASE_TABLES = {
    "state": '[state]\nurl = "sqlite:///state/provisioner.db"\n',
    "source": '[source]\ntype = "csv"\npath = "people.csv"\nkey = "employee_id"\n',
    "targets.directory": ('[targets.directory]\ntype = "scim"\nbase_url = "http://127.0.0.1:8080/scim/v2"\n'
                          'token = "env:SCIM_TOKEN"\nmapping = "mappings/directory.toml"\n'),
}
PEOPLE = ("employee_id,given_name,family_name,email,department,title,team,role,timezone,work_phone,"
          "mobile_phone,status\n"
          "E0001,Ada,Lovelace,ada@example.com,Support,Agent,Contact Center Support,Agent,Europe/London,"
          "555-0101,555-0201,active\n"
          "E0002,Grace,Hopper,grace@example.com,Support,Team Lead,Contact Center Support,Supervisor,"
          "America/New_York,555-0102,,active\n")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    marker: str        # the docs-test comment's words, "" without one
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    found, lines = [], page.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = re.match(r"^<!-- docs-test: (.*?) -->$", before.strip())
        found.append(Block(page, i + 1, opening.group(1), marker.group(1) if marker else "",
                           "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
TOML = [b for b in ALL_BLOCKS if b.lang == "toml"]


def _headers(text: str) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^\[\[?([^\]]+)\]\]?", text, re.M)}


def whole_config(block: Block) -> str:
    if "state" in _headers(block.text):
        return block.text
    named = _headers(block.text)
    base = [text for name, text in BASE_TABLES.items()
            if name not in named and not (name == "source" and "sources" in named)]
    return "\n".join(base) + "\n" + block.text


def workspace(root: Path, config: str, monkeypatch) -> Path:
    """Write config.toml and what it refers to under root; return its path."""
    shutil.copytree(ROOT / "mappings", root / "mappings")
    # each connector's default mapping where its page's examples look for it: mappings/<type>.toml
    for kind, conn in connectors().items():
        mapping = conn.mapping_file()
        if mapping is not None and mapping.is_file():
            (root / "mappings" / f"{kind}.toml").write_text(mapping.read_text(encoding="utf-8"), encoding="utf-8")
    (root / "people.csv").write_text(PEOPLE, encoding="utf-8")
    (root / "state").mkdir()
    for name in set(re.findall(r'"env:([A-Za-z_][A-Za-z0-9_]*)"', config)):
        monkeypatch.setenv(name, f"docs-test-{name.lower()}")
    for reference in set(re.findall(r'"file:([^"]+)"', config)):
        inside = reference.lstrip("/")
        config = config.replace(f'"file:{reference}"', f'"file:{inside}"')
        (root / inside).parent.mkdir(parents=True, exist_ok=True)
        (root / inside).write_text("docs-test-secret\n", encoding="utf-8")
    monkeypatch.delenv("PROVISIONER_DB", raising=False)
    path = root / "config.toml"
    path.write_text(config, encoding="utf-8")
    return path


def check_offline(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "check", "--offline"])
    problem = f"\n{result.exception!r}" if result.exit_code and not isinstance(result.exception, SystemExit) else ""
    return result.exit_code, result.output + problem


def test_every_toml_block_says_how_it_is_checked_when_it_is_not_a_plain_config():
    for block in TOML:
        kind = block.marker.split(",")[0]
        assert kind in ("", "mapping", "config-only", "skip"), f"{block.where}: unknown marker {block.marker!r}"
        if kind in ("config-only", "skip"):
            assert block.marker.partition(",")[2].strip(), f"{block.where}: say why it is {kind}"
    assert len(TOML) >= 10   # the extraction found them


@pytest.mark.parametrize("block", [b for b in TOML if b.marker == ""], ids=lambda b: b.where)
def test_config_examples_pass_check_offline(block, tmp_path, monkeypatch):
    config = workspace(tmp_path, whole_config(block), monkeypatch)
    code, output = check_offline(config)
    assert code == 0, f"{block.where}: check --offline exited {code}:\n{output}"


@pytest.mark.parametrize("block", [b for b in TOML if b.marker == "mapping"], ids=lambda b: b.where)
def test_mapping_examples_pass_check_offline(block, tmp_path, monkeypatch):
    config = workspace(tmp_path, whole_config(Block(block.page, block.line, "toml", "", "")), monkeypatch)
    (tmp_path / "mappings" / "directory.toml").write_text(block.text, encoding="utf-8")
    code, output = check_offline(config)
    assert code == 0, f"{block.where}: check --offline exited {code}:\n{output}"


@pytest.mark.parametrize("block", [b for b in TOML if b.marker.startswith("config-only")], ids=lambda b: b.where)
def test_config_only_examples_load(block, tmp_path, monkeypatch):
    settings = load_config(workspace(tmp_path, whole_config(block), monkeypatch))
    for target in settings.targets.values():
        load_mapping(target.mapping)


# --- command lines ---------------------------------------------------------

def command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `provisioner`) for every provisioner command in a code block."""
    found = []
    for block in ALL_BLOCKS:
        if block.lang not in ("sh", "ini", "cron"):
            continue
        for offset, line in enumerate(block.text.split("\n"), start=1):
            if line.lstrip().startswith("#") or (block.lang == "ini" and not line.startswith("ExecStart=")):
                continue
            if block.lang == "cron":   # /etc/cron.d: five time fields and the user come first
                line = " ".join(line.split()[6:])
            for part in re.split(r"&&|\|", line):
                part = re.split(r"\s#|>>", part)[0].strip().removesuffix("&")
                words = shlex.split(part.strip().removeprefix("ExecStart="))
                if words and words[0].rsplit("/", 1)[-1] == "provisioner":
                    found.append((f"{block.where}+{offset}", words[1:]))
    return found


COMMANDS = command_lines()


def test_command_lines_were_found():
    assert any(words[:1] == ["demo"] for _, words in COMMANDS)
    assert any(words[:1] == ["schedule"] or "schedule" in words for _, words in COMMANDS)


def _rest(ctx: click.Context) -> list[str]:
    """What a group left for its subcommand (click 8.2 renamed the attribute)."""
    protected = ctx.__dict__.get("_protected_args", ctx.__dict__.get("protected_args", []))
    return [*protected, *ctx.args]


@pytest.mark.parametrize("where,words", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_command_lines_parse(where, words):
    """Options and arguments as the CLI takes them (placeholders like <plan-id> are arguments)."""
    ctx = cli.make_context("provisioner", list(words), resilient_parsing=False)
    rest = _rest(ctx)
    assert rest, f"{where}: no command in {words}"
    while rest:
        name, command, rest = ctx.command.resolve_command(ctx, rest)
        assert command is not None, f"{where}: unknown command in {words}"
        ctx = command.make_context(name, rest, parent=ctx)
        rest = _rest(ctx) if isinstance(command, click.Group) else []


# --- links and the front page ---------------------------------------------

def anchors(page: Path) -> set[str]:
    slugs = set()
    for heading in re.findall(r"^#+\s+(.*)$", page.read_text(encoding="utf-8"), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def test_every_relative_link_leads_to_a_file_and_heading():
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_in_the_readme_contents():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        assert f"]({page.relative_to(ROOT).as_posix()})" in readme, page


def test_the_readme_is_a_short_front_page():
    assert len((ROOT / "README.md").read_bytes()) <= README_LIMIT


def test_the_readme_opens_with_the_demo_and_the_test_command_that_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = blocks(ROOT / "README.md")[0]
    assert readme.split("\n")[2] == "```sh", "the first lines after the title are the set-up commands"
    commands = [line.split(" #")[0].strip() for line in first.text.strip().split("\n")]
    assert commands == ["python3 -m pip install -e '.[sandbox]' && provisioner demo", "bash .ci/run"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = [line.strip() for line in ci.split("\n") if line.strip() and not line.lstrip().startswith("#")]
    assert steps[-1] == "python3 -m pytest -q"
    assert "`python3 -m pytest -q`" in readme   # the README says what .ci/run finally runs
