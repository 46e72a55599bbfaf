"""The conformance suite's workbench: one connector's emulator behind a FaultProxy, and
config directories whose one target is that connector, driven in process or by the CLI."""

from __future__ import annotations

import csv
import io
import itertools
import os
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .proxy import FaultProxy
from .testkit import Testkit, toml_table

TARGET = "conformance"   # the [targets.NAME] the suite configures


class Workspace:
    """A config directory: config.toml (CSV source, SQLite state DB, the one target), the
    kit's mapping, and people.csv."""

    def __init__(self, root: Path, kit: Testkit, base_url: str, rows: list[dict[str, str]],
                 env: dict[str, str] | None = None):
        self.root, self.kit = root, kit
        root.mkdir(parents=True, exist_ok=True)
        (root / "mapping.toml").write_text(kit.mapping, encoding="utf-8")
        settings = {**kit.settings(base_url), "mapping": "mapping.toml", "concurrency": 1,
                    "max_disable_percent": 100}
        (root / "config.toml").write_text(f"""[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.{TARGET}]
type = "{kit.type}"
{toml_table(settings)}""", encoding="utf-8")
        self.people(rows)
        self.secrets = {**kit.env, **(env or {})}   # the env: references' values
        self.env = {**os.environ, **self.secrets, "COLUMNS": "200", "NO_COLOR": "1"}
        for key in ("PROVISIONER_DB", "PROVISIONER_CONFIG", "PROVISIONER_TENANT"):
            self.env.pop(key, None)

    def people(self, rows: list[dict[str, str]]) -> None:
        header = list(dict.fromkeys(k for row in [self.kit.row(0), *rows] for k in row))
        out = io.StringIO()
        writer = csv.DictWriter(out, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (self.root / "people.csv").write_text(out.getvalue(), encoding="utf-8")

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "provisioner", *args]

    def run(self, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(*args), cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=120)
        if check is not None:
            assert proc.returncode == check, (f"provisioner {' '.join(args)}: exit {proc.returncode}, "
                                              f"not {check}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def query(self, sql: str, *params: Any) -> list[tuple]:
        with sqlite3.connect(self.root / "state.db") as db:
            return db.execute(sql, params).fetchall()

    @contextmanager
    def session(self) -> Iterator[tuple[Any, Any, dict]]:
        """(settings, state DB, {name: TargetHandle}) opened in this process as the CLI opens them."""
        from .. import flow
        from ..config import load_config
        from ..state import StateDB
        # the env: references resolve from this process's environment: set for this session only
        saved = {key: os.environ.get(key) for key in self.secrets}
        os.environ.update(self.secrets)
        try:
            settings = load_config(self.root / "config.toml")
            state = StateDB(settings.state.url)
            try:
                with flow.open_targets(settings) as handles:
                    yield settings, state, handles
            finally:
                state.close()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    @contextmanager
    def target(self) -> Iterator[Any]:
        """The connected TargetHandle."""
        with self.session() as (_, _, handles):
            yield handles[TARGET]

    def plan(self) -> Any:
        """A new stored plan, made by provisioner.flow as `provisioner plan` makes it."""
        from .. import flow
        with self.session() as (settings, state, handles):
            outcome = flow.build_plan(settings, state, handles)
        assert not outcome.unreadable, outcome.unreadable
        return outcome.plan

    def apply(self, plan_id: str) -> Any:
        """Apply (or resume) the stored plan as `provisioner apply PLAN --yes` does; the ApplyResult."""
        from .. import flow
        with self.session() as (settings, state, handles):
            plan = state.load_plan(plan_id)
            return flow.run_apply(settings, state, handles, plan)


class Bench:
    """One connector under test: its kit, its running emulator and the proxy in front of it."""

    handle: Any = None   # the TargetHandle the direct cases use, opened by the suite's fixture

    def __init__(self, kit: Testkit, root: Path):
        self.kit, self.root = kit, root
        self.server = kit.start()
        try:
            self.proxy = FaultProxy(self.server.base_url).start()
        except BaseException:
            self.server.stop()
            raise
        self._numbers = itertools.count(1)
        self._spaces = itertools.count(1)

    def person(self) -> int:
        """A person number no other case of this connector has used (the server is shared)."""
        return next(self._numbers)

    def rows(self, count: int) -> list[dict[str, str]]:
        return [self.kit.row(self.person()) for _ in range(count)]

    def workspace(self, rows: list[dict[str, str]], env: dict[str, str] | None = None) -> Workspace:
        return Workspace(self.root / f"ws{next(self._spaces)}", self.kit, self.proxy.base_url, rows, env)

    def seed(self, row: dict[str, str]) -> None:
        """Make the account of `row` by hand, as a person would before provisioner links it."""
        assert self.kit.seed is not None
        self.kit.seed(self.server, row)

    def close(self) -> None:
        self.proxy.stop()
        self.server.stop()
