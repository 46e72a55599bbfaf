"""What every command shares: --version, colours (--no-color, NO_COLOR), an example in each --help."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import click
import pytest

from provisioner.cli import cli
from provisioner.state import StateDB
from test_state_db import make_plan

# an SGR sequence that sets a foreground or background colour (bold alone is not a colour)
COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-79]|4[0-79]|9[0-7]|10[0-7]|38;|48;)[0-9;]*m")


@pytest.fixture
def workdir(tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    db.save_plan(make_plan())
    db.close()
    (tmp_path / "config.toml").write_text(f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
                                          encoding="utf-8")
    return tmp_path


def run(cwd, *args, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PROVISIONER_DB")}
    proc = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**environ, **env})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_version(tmp_path):
    assert re.fullmatch(r"provisioner \d+\.\d+\.\d+\S*\n", run(tmp_path, "--version").stdout)


def test_colours_unless_no_color_or_the_NO_COLOR_variable(workdir):
    coloured = run(workdir, "show", "p1", FORCE_COLOR="1").stdout
    assert COLOUR.search(coloured)  # the check below would pass on plain text too
    for plain in (run(workdir, "--no-color", "show", "p1", FORCE_COLOR="1").stdout,
                  run(workdir, "show", "p1", FORCE_COLOR="1", NO_COLOR="1").stdout):
        assert not COLOUR.search(plain) and "create" in plain and "conflict" in plain


def commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_commands_help_shows_an_example():
    names = []
    for path, command in commands(cli):
        names.append(" ".join(path))
        assert command.epilog and command.epilog.startswith("\b\nExample:\n  provisioner "), path
        with click.Context(command, info_name=" ".join(path)) as ctx:
            shown = command.get_help(ctx)
        example = command.epilog.splitlines()[2].strip()
        assert f"Example:\n    {example}" in shown
        assert example.split()[1:len(path) + 1] == list(path) or "--config" in example
    assert {"plan", "show", "apply", "audit", "schedule", "sandbox serve"} <= set(names)


def test_the_top_level_help_tells_how_to_get_shell_completion(tmp_path):
    shown = run(tmp_path, "--help").stdout
    assert '_PROVISIONER_COMPLETE=bash_source provisioner' in shown and "--no-color" in shown
    script = run(tmp_path, _PROVISIONER_COMPLETE="bash_source").stdout
    assert "_provisioner_completion" in script and "complete " in script
