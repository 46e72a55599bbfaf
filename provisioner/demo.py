"""`provisioner demo`: the built-in example, end to end, with no account anywhere.

Every SCIM target of the config that points at this machine gets a fresh
scim2-server (an independent SCIM 2.0 implementation) on a free port, the
state DB is a throwaway file, and the job runs: plan, apply, plan again.
"""

from __future__ import annotations

import os
import secrets as random_secrets
import tempfile
import tomllib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from . import flow, render
from .config import load_config
from .errors import ConfigError
from .sandbox.scim_server import start_scim_server
from .state import StateDB

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _fill_demo_tokens(config_path: Path) -> None:
    """Give each `env:NAME` secret of the example a throwaway value when NAME is unset."""
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return  # load_config reports it properly
    for target in (raw.get("targets") or {}).values():
        reference = target.get("token") if isinstance(target, dict) else None
        if isinstance(reference, str) and reference.startswith("env:"):
            os.environ.setdefault(reference[4:], "demo-" + random_secrets.token_hex(8))


def run_demo(config_path: str, keep: bool = False) -> int:
    path = Path(config_path)
    _fill_demo_tokens(path)
    settings = load_config(path)
    servers = []
    workdir = tempfile.TemporaryDirectory(prefix="provisioner-demo-")
    try:
        for name, target in settings.targets.items():
            url = urlsplit(target.base_url)
            if target.type != "scim" or url.hostname not in _LOOPBACK:
                raise ConfigError(f"{path}: targets.{name}: the demo runs only against SCIM targets "
                                  "on this machine (127.0.0.1)")
            prefix = url.path.rstrip("/").removesuffix("/v2").strip("/")
            server = start_scim_server(target.token.reveal(), tenant=prefix or None)
            servers.append(server)
            target.base_url = urlunsplit((url.scheme, f"127.0.0.1:{server.port}", url.path, "", ""))
            click.echo(f"demo: started scim2-server for target {name} at {target.base_url}")
        settings.state.url = f"sqlite:///{Path(workdir.name) / 'demo.db'}"
        state = StateDB(settings.state.url)
        with flow.open_targets(settings) as handles:
            click.echo("\n== 1. plan: what would change ==")
            first = flow.build_plan(settings, state, handles).plan
            render.print_plan(first, {})
            click.echo("\n== 2. apply that plan ==")
            result = flow.run_apply(settings, state, handles, first)
            render.print_apply_result(first, result, state)
            click.echo("\n== 3. plan again: nothing left to do ==")
            second = flow.build_plan(settings, state, handles).plan
            render.print_plan(second, {})
        state.close()
        if keep:
            click.echo("\nservers still running; press Ctrl-C to stop them")
            try:
                servers[0].process.wait()
            except KeyboardInterrupt:
                pass
        return 1 if result.failed else 0
    finally:
        for server in servers:
            server.stop()
        workdir.cleanup()
