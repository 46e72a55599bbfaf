"""The `fleet` commands and `worker`: parse, call, print (procrastinate loads only when one runs)."""

from __future__ import annotations

import json
import sys

import click


def _example(line: str) -> str:
    return f"\b\nExample:\n  {line}"


def _need_procrastinate() -> None:
    from importlib.util import find_spec
    from ..errors import ConfigError
    if find_spec("procrastinate") is None:
        raise ConfigError("the fleet needs procrastinate: pip install 'provisioner[fleet]'")


def _registry():
    from .tenants import Registry
    return Registry()


@click.group()
def fleet() -> None:
    """Many tenants on one PostgreSQL (PROVISIONER_DB), run by `provisioner worker` processes."""


@fleet.command("add", epilog=_example("provisioner fleet add acme --config /etc/provisioner/acme/config.toml"))
@click.argument("name")
@click.option("--config", "config", required=True, type=click.Path(dir_okay=False),
              help="The tenant's config.toml (the same path on every worker host).")
@click.option("--no-check", is_flag=True,
              help="Only read the config as TOML here: its secrets exist on the worker hosts only.")
def fleet_add(name: str, config: str, no_check: bool) -> None:
    """Add a tenant: its config, and a schema of its own for its state."""
    _need_procrastinate()
    from .jobs import ensure_schema
    from .tenants import fleet_url
    ensure_schema(fleet_url())
    tenant = _registry().add(name, config, check=not no_check)
    click.echo(f"tenant {tenant.name}: added ({tenant.config}; state in schema {tenant.schema})")


@fleet.command("remove", epilog=_example("provisioner fleet remove acme"))
@click.argument("name")
@click.option("--drop-state", is_flag=True, help="Also delete its runs, plans, links and audit log.")
def fleet_remove(name: str, drop_state: bool) -> None:
    """Remove a tenant from the fleet (its state is kept unless --drop-state)."""
    _registry().remove(name, drop_state=drop_state)
    click.echo(f"tenant {name}: removed" + ("; its state dropped" if drop_state else
                                            f"; its state stays in schema tenant_{name}"))


@fleet.command("list", epilog=_example("provisioner fleet list --json"))
@click.option("--json", "as_json", is_flag=True)
def fleet_list(as_json: bool) -> None:
    """The tenants and their configs."""
    tenants = _registry().list()
    if as_json:
        click.echo(json.dumps([t.__dict__ for t in tenants], indent=2))
        return
    for tenant in tenants:
        click.echo(f"{tenant.name}\t{tenant.config}\t(added {tenant.added_at})")
    if not tenants:
        click.echo("no tenants (add one with: provisioner fleet add NAME --config PATH)", err=True)


@fleet.command("run", epilog=_example("provisioner fleet run acme globex"))
@click.argument("names", nargs=-1)
def fleet_run(names: tuple[str, ...]) -> None:
    """Queue a cycle now for these tenants (default: all), like `schedule --once` on a worker."""
    _need_procrastinate()
    from .jobs import defer_plan, ensure_schema, make_app
    from .tenants import fleet_url
    url = fleet_url()
    ensure_schema(url)
    registry = _registry()
    known = [t.name for t in registry.list()]
    for name in names:
        registry.get(name)   # an unknown name: one sentence, exit 2, nothing queued
    app = make_app(url, max_size=2)
    with app.open():
        for name in names or known:
            queued = defer_plan(app, name, "fleet run")
            click.echo(f"tenant {name}: " + ("cycle queued" if queued else "a cycle is already queued"))


@fleet.command("status", epilog=_example("provisioner fleet status --json"))
@click.option("--json", "as_json", is_flag=True)
def fleet_status(as_json: bool) -> None:
    """Per tenant and target: last success, plans waiting, failures, jobs, which worker holds what."""
    _need_procrastinate()
    from .status import fleet_report, print_report
    from .tenants import fleet_url
    report = fleet_report(fleet_url())
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)


@click.command(epilog=_example("provisioner worker --concurrency 4"))
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(min=1),
              help="Jobs this process runs at once (an apply job uses its target's own concurrency).")
@click.option("--stalled-after", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds without a heartbeat after which a worker's jobs are given to another.")
def worker(concurrency: int, stalled_after: float) -> None:
    """Run fleet jobs (plan a tenant, apply a target, notify) until SIGTERM or Ctrl-C."""
    _need_procrastinate()
    from .tenants import fleet_url
    from .worker import run_worker
    url = fleet_url()
    click.echo(f"worker: concurrency {concurrency}; stop with SIGTERM or Ctrl-C", err=True)
    run_worker(url, concurrency, stalled_after)
    sys.exit(0)
