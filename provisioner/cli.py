"""The `provisioner` command: parse, call the flow, print. No business logic here."""

from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import nullcontext
from datetime import datetime, timezone

import click

from .errors import ConfigError, ProvisionerError
from .logs import setup_logging
from .secrets import redact
from .stopping import EXIT_INTERRUPTED, StopFlag

# The engine's modules (sqlalchemy, pydantic, rich, httpx, ldap3 behind them) are
# imported inside the commands that use them: `--help`, and every command, start
# without paying for what they do not run.

# what `show --format` and `audit --format` offer besides text (see provisioner.reports)
PLAN_FORMATS = ("json", "html", "markdown", "csv")
AUDIT_FORMATS = ("csv", "json")

# Exit codes are part of the interface: schedulers and scripts read them.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_BLOCKED, EXIT_STALE, EXIT_CHANGES = 0, 1, 2, 3, 4, 5
EXIT_LOCKED = 6

log = logging.getLogger("provisioner")


class Context:
    def __init__(self, config_path: str, tenant: str | None = None):
        self._config_path, self.tenant_name = config_path, tenant
        self._settings = None
        self._tenant = None

    @property
    def tenant(self):
        """With --tenant: that fleet tenant (its config path and state schema), looked up once."""
        if self.tenant_name is not None and self._tenant is None:
            from .fleet.tenants import fleet_url, resolve
            fleet_url()  # the sentence about PROVISIONER_DB comes before any lookup
            self._tenant = resolve(self.tenant_name)
        return self._tenant

    @property
    def config_path(self) -> str:
        return self.tenant.config if self.tenant_name is not None else self._config_path

    @property
    def settings(self):
        if self._settings is None:
            from .config import load_config
            self._settings = load_config(self.config_path)
            for name, target in self._settings.targets.items():
                if not target.tls_verify:
                    log.warning("target %s: TLS certificate verification is OFF (tls_verify = false)", name)
                if target.allow_insecure:
                    log.warning("target %s: allow_insecure = true: its credentials may cross the "
                                "network unencrypted", name)
        return self._settings

    def state(self) -> StateDB:
        from .state import StateDB
        if self._settings is None:
            from .config import load_state_settings
            # a command that only reads the state DB resolves no target secret
            return StateDB(load_state_settings(self.config_path).url, schema=self._schema())
        return StateDB(self.settings.state.url, schema=self._schema())

    def _schema(self) -> str | None:
        return self.tenant.schema if self.tenant_name is not None else None


    def run_lock(self, state: StateDB, command: str, wait: float | None):
        """The lock every changing command holds: one run at a time across machines."""
        from .runlock import RUN_LOCK, describe_holder
        lock = self.settings.lock
        return state.lock(RUN_LOCK, describe_holder(command),
                          lock.wait_seconds if wait is None else wait, lock.lease_seconds)


def _example(*lines: str) -> str:
    """A command's --help epilog: one example, kept as typed (\\b stops click re-wrapping it)."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" if line else "" for line in lines)


def _detail_options(command):
    """--full and --compact: how much of each item the text shows (see provisioner.plan_text)."""
    command = click.option("--compact", "detail", flag_value="compact",
                           help="One line per item, every item.")(command)
    return click.option("--full", "detail", flag_value="full",
                        help="Every item with every attribute. By default disables, enables, conflicts "
                             "and manual items are shown in full and only the first 20 creates and "
                             "20 updates per target.")(command)


def _as_of_day(_ctx, _param, value: str | None):
    if value is None:
        return None
    from .clock import parse_day
    try:
        return parse_day(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_AS_OF_OPTION = click.option(
    "--as-of", "as_of", metavar="YYYY-MM-DD", callback=_as_of_day, default=None,
    help="Plan as of that day: effective dates, prehire windows and grace periods as they would "
         "be then (stored with that day; never `latest`; apply refuses it before the day).")

_WAIT_OPTION = click.option("--wait", "wait", type=click.FloatRange(min=0), default=None,
                            help="Seconds to wait for another run to finish (default lock.wait_seconds); "
                                 "then exit 6.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_example("provisioner plan", "",
                             "Shell completion for bash (zsh_source, fish_source for the others):",
                             '  eval "$(_PROVISIONER_COMPLETE=bash_source provisioner)"'))
@click.version_option(package_name="provisioner", prog_name="provisioner", message="%(prog)s %(version)s")
@click.option("--config", "config_path", default="config.toml", envvar="PROVISIONER_CONFIG",
              show_default=True, help="Path of config.toml (env PROVISIONER_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level on stderr.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Log lines for a person, or JSON lines for a log collector.")
@click.option("--no-color", is_flag=True, help="No colours in the output (also: env NO_COLOR set to anything).")
@click.option("--tenant", metavar="NAME", envvar="PROVISIONER_TENANT", default=None,
              help="Act on this fleet tenant: its config and state in the fleet DB (PROVISIONER_DB); "
                   "see provisioner fleet.")
@click.pass_context
def cli(ctx: click.Context, config_path: str, verbose: bool, log_format: str, no_color: bool,
        tenant: str | None) -> None:
    """Keep target accounts in step with a source of truth: plan, review, apply."""
    if no_color:
        # rich reads NO_COLOR when a console is made (the progress bar's), the module's console is older
        from . import render
        os.environ["NO_COLOR"] = "1"
        render.console.no_color = True
    setup_logging(verbose, log_format)
    ctx.obj = Context(config_path, tenant)


@cli.command(epilog=_example("provisioner check --offline"))
@click.option("--offline", is_flag=True, help="Do not contact the targets.")
@click.pass_obj
def check(obj: Context, offline: bool) -> None:
    """Validate config, mappings and the source; authenticate to each target."""
    from . import flow
    from .sources import check_sources
    settings = obj.settings
    checks, source = check_sources(settings)
    for one in checks:
        if one.error is not None:
            click.echo(f"error: {redact(one.error)}", err=True)
        elif len(checks) > 1 or one.type != "csv":  # a lone CSV file: the line below says it all
            unit, reach = ("entries", "reachable") if one.type == "ldap" else ("rows", "readable")
            click.echo(f"source {one.name}: {reach}, {one.read} {unit} read, "
                       f"{len(one.result.rejected)} rejected")
    if source is not None:
        click.echo(f"source: {len(source.identities)} identities read, {len(source.rejected)} rows rejected")
        for rejected in source.rejected:
            click.echo(f"  row {rejected.row} ({rejected.key or 'no key'}): {rejected.reason}")
        for other in source.unmatched:
            click.echo(f"  unmatched record {other.row} ({other.key or 'no key'}): {other.reason}")
    failures = 0
    with flow.open_targets(settings) as handles:
        if source is not None:
            flow.check_mappings(settings, handles, source)
        for name, handle in handles.items():
            flow.check_keep(settings, name, handle.mapping)
        for name, handle in handles.items():
            if offline:
                click.echo(f"target {name}: mapping {handle.mapping.path.name} ok (not contacted)")
                continue
            try:
                click.echo(f"target {name}: {handle.target.check()}")
            except ProvisionerError as exc:
                failures += 1
                click.echo(f"target {name}: FAILED: {exc}", err=True)
    obj.state().close()
    sys.exit(EXIT_CONFIG if source is None else EXIT_FAILED if failures else EXIT_OK)


@cli.command(epilog=_example("provisioner plan --target directory --detailed-exitcode"))
@click.option("--target", "targets", multiple=True, help="Plan only this target (repeatable).")
@click.option("--only", multiple=True, help="Plan only the items of this identity key (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print only the plan document as JSON.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when nothing changes, 5 when changes are planned.")
@_AS_OF_OPTION
@_detail_options
@click.pass_obj
def plan(obj: Context, targets: tuple[str, ...], only: tuple[str, ...], as_json: bool,
         detailed_exitcode: bool, as_of, detail: str | None) -> None:
    """Compute, store and print what would be created, updated and disabled."""
    from . import flow
    settings, state = obj.settings, obj.state()
    # every person and account read lives until the plan is printed: the cycle collector
    # stays paused through the printing too, not only while build_plan runs
    with flow.collector_paused(), flow.open_targets(settings, targets) as handles:
        # what a separate apply pays again (the estimate counts it); a new state DB's schema is made once
        started_up = flow.process_age()
        started_up = None if started_up is None else max(0.0, started_up - state.upgrade_seconds)
        outcome = flow.build_plan(settings, state, handles, only=only, as_of=as_of)
        _print_plan(outcome, handles, as_json, started_up, detail)
    sys.exit(_plan_exit_code(outcome, detailed_exitcode))


def _plan_exit_code(outcome: flow.PlanOutcome, detailed: bool) -> int:
    from . import render
    if outcome.unreadable:
        return EXIT_FAILED
    if outcome.plan.status == "blocked":
        return EXIT_BLOCKED
    if detailed and any(i.op in render.CHANGE_OPS for i in outcome.plan.items):
        return EXIT_CHANGES
    return EXIT_OK


def _print_plan(outcome, handles, as_json: bool, started_up: float | None, detail: str | None,
                apply_hint: bool = True) -> None:
    """The plan, with each target's apply estimate (`started_up`: see flow.apply_fixed_seconds)."""
    plan = outcome.plan
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False))
        return
    from . import flow, render
    from .model import APPLICABLE_OPS
    # the apply's own fixed cost, shared by the targets it sends anything to: the column adds up
    busy = {i.target for i in plan.items if i.op in APPLICABLE_OPS} & set(handles)
    fixed = flow.apply_fixed_seconds(outcome, started_up) / max(1, len(busy))
    estimates = {name: flow.estimate_seconds(plan, name, h.rate_limit, h.concurrency, h, fixed_seconds=fixed)
                 for name, h in handles.items()}
    for name in busy:
        log.info("target %s: apply estimate %.2f s (of it %.2f s start-up and plan loading)",
                 name, estimates[name], fixed)
    render.print_plan(plan, estimates, apply_hint=apply_hint, detail=detail or "default")


@cli.command(epilog=_example("provisioner show latest --format html -o plan.html"))
@click.argument("plan_id")
@click.option("--format", "fmt", type=click.Choice(["text", *PLAN_FORMATS]), default="text", show_default=True,
              help="text for the terminal; html (one self-contained page), markdown (for a ticket), "
                   "csv (one row per item and attribute) or json for people and tools elsewhere.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--target", "targets", multiple=True, help="Show only this target's part (repeatable).")
@_detail_options
@click.pass_obj
def show(obj: Context, plan_id: str, fmt: str, as_json: bool, output: str | None,
         targets: tuple[str, ...], detail: str | None) -> None:
    """Print a stored plan (PLAN_ID, a unique prefix of it, or 'latest'), or write it as a report."""
    plan = _only_targets(_load_plan(obj.state(), plan_id), targets)
    fmt = "json" if as_json else fmt
    if fmt == "text":
        if output:
            raise click.UsageError("-o/--output needs --format html, markdown, csv or json")
        from . import render
        render.print_plan(plan, {}, detail=detail or "default")
        return
    from .reports import PLAN_REPORTS
    _write_report(PLAN_REPORTS[fmt](plan), output)
    if output:
        click.echo(f"plan {plan.plan_id}: {fmt} report written to {output}", err=True)


def _only_targets(plan, targets: tuple[str, ...]):
    """The plan cut down to these targets (its counts and `Plan:` line then theirs)."""
    if not targets:
        return plan
    unknown = [t for t in targets if t not in plan.targets]
    if unknown:
        raise click.UsageError(f"plan {plan.plan_id} has no target named {', '.join(unknown)} "
                               f"(it has: {', '.join(plan.targets) or 'none'})")
    from dataclasses import replace
    return replace(plan, targets={n: s for n, s in plan.targets.items() if n in targets},
                   items=tuple(i for i in plan.items if i.target in targets))


def _write_report(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        # newline="": the CSV report carries its own \r\n line ends
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        raise click.UsageError(f"{output}: cannot write the report: {exc.strerror}") from None


@cli.command(epilog=_example("provisioner apply latest --yes"))
@click.argument("plan_id")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--allow-mass-change", is_flag=True, help="Also apply targets the safety policy blocked.")
@_WAIT_OPTION
@_detail_options
@click.pass_obj
def apply(obj: Context, plan_id: str, yes: bool, allow_mass_change: bool, wait: float | None,
          detail: str | None) -> None:
    """Apply a stored plan; re-running it resumes where it stopped. Without --yes it shows
    the plan and asks first."""
    settings, state = obj.settings, obj.state()
    with obj.run_lock(state, "apply", wait):
        plan = _load_plan(state, plan_id)
        _refuse_future(plan, settings)
        code = _apply(settings, state, plan, yes=yes, allow_mass_change=allow_mass_change,
                      detail=detail or "default")
    sys.exit(code)


@cli.command(epilog=_example("provisioner reconcile --dry-run"))
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--dry-run", is_flag=True, help="Plan and print only; change nothing.")
@click.option("--allow-mass-change", is_flag=True, help="Also apply targets the safety policy blocked.")
@click.option("--target", "targets", multiple=True, help="Reconcile only this target (repeatable).")
@_AS_OF_OPTION
@_WAIT_OPTION
@_detail_options
@click.pass_obj
def reconcile(obj: Context, yes: bool, dry_run: bool, allow_mass_change: bool,
              targets: tuple[str, ...], as_of, wait: float | None, detail: str | None) -> None:
    """Plan, then apply that plan."""
    from . import flow
    if as_of is not None and not dry_run:
        raise click.UsageError("--as-of plans for another day: add --dry-run (such a plan is never applied "
                               "by reconcile)")
    settings, state = obj.settings, obj.state()
    # a dry run changes nothing, so it waits for nobody
    lock = nullcontext() if dry_run else obj.run_lock(state, "reconcile", wait)
    with lock, flow.open_targets(settings, targets) as handles:
        outcome = flow.build_plan(settings, state, handles, as_of=as_of)
        # applied right away (in this process: no start-up to estimate): no "apply with" line,
        # and the question follows the `Plan:` line
        _print_plan(outcome, handles, as_json=False, started_up=None, detail=detail, apply_hint=dry_run)
        if dry_run:
            sys.exit(_plan_exit_code(outcome, detailed=False))
        code = _apply(settings, state, outcome.plan, yes=yes, allow_mass_change=allow_mass_change,
                      handles=handles)
    if code == EXIT_OK and not (allow_mass_change and not outcome.unreadable):
        # the plan's own outcome (blocked, a target unread); allowed past the block, it was applied
        code = _plan_exit_code(outcome, detailed=False)
    sys.exit(code)


def _apply(settings, state: StateDB, plan, *, yes: bool, allow_mass_change: bool, handles=None,
           detail: str = "default") -> int:
    from . import flow, render
    todo = render.applicable_count(plan)
    if todo == 0:
        click.echo(f"plan {plan.plan_id}: nothing to apply")
        return EXIT_OK
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"apply {todo} changes of plan {plan.plan_id}: add --yes "
                                   "(there is no terminal to ask for confirmation)")
        if handles is None:  # reconcile printed the plan already
            render.print_plan(plan, {}, apply_hint=False, detail=detail)
        question = render.apply_question(plan, allow_mass_change)
        # asked right below the `Plan:` line: nothing is printed between them; nothing is
        # asked when the apply would change nothing (every change left is on a blocked target)
        if question and not click.confirm(question, default=False):
            click.echo("nothing applied")
            return EXIT_OK
    if handles is None:
        with flow.open_targets(settings, [n for n in plan.targets if n in settings.targets]) as opened:
            return _apply(settings, state, plan, yes=True, allow_mass_change=allow_mass_change,
                          handles=opened)
    with StopFlag().installed() as stop, render.progress(todo) as advance:
        result = flow.run_apply(settings, state, handles, plan, allow_mass_change=allow_mass_change,
                                on_item=advance, should_stop=stop)
    render.print_apply_result(plan, result, state)
    if result.stopped:
        click.echo(f"stopped: the rest of plan {plan.plan_id} stays pending; resume with: "
                   f"provisioner apply {plan.plan_id}", err=True)
        return EXIT_INTERRUPTED
    if result.failed:
        return EXIT_FAILED
    if result.blocked_targets:
        return EXIT_BLOCKED
    if result.stale:
        return EXIT_STALE
    return EXIT_OK


@cli.command(epilog=_example("provisioner runs --limit 5"))
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
def runs(obj: Context, as_json: bool, limit: int) -> None:
    """List recent runs: when, what, how long, the counts, the plan."""
    from . import render
    report = render.runs_report(obj.state(), limit)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        render.print_runs(report)


@cli.command(epilog=_example("provisioner status --json"))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Per target: linked accounts, last successful run, pending plans, last error."""
    from . import render
    report = render.status_report(obj.settings, obj.state())
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        render.print_status(report)


@cli.command(epilog=_example("provisioner audit --since 2026-03-01 --target directory -o audit.csv"))
@click.option("--since", help="Only changes at or after this date or time (YYYY-MM-DD or ISO 8601; UTC "
                              "unless it has an offset).")
@click.option("--target", help="Only this target's changes.")
@click.option("--person", "person_key", metavar="KEY", help="Only this person's changes (their source key).")
@click.option("--format", "fmt", type=click.Choice(AUDIT_FORMATS), default="csv", show_default=True,
              help="csv: one row per attribute sent; json: one object per change.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file instead of stdout.")
@click.pass_obj
def audit(obj: Context, since: str | None, target: str | None, person_key: str | None, fmt: str,
          output: str | None) -> None:
    """The provisioning log: every change sent, before and after, its run, plan and outcome."""
    from .reports.audit_report import AUDIT_REPORTS
    rows = obj.state().audit_rows(target, identity=person_key, since=_utc_time(since) if since else None)
    _write_report(AUDIT_REPORTS[fmt](rows), output)
    if output:
        click.echo(f"{len(rows)} change(s) written to {output}", err=True)


def _utc_time(text: str) -> str:
    """A --since value as the audit log writes times, so that they compare as text."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date or time (e.g. 2026-03-01 or "
                                 "2026-03-01T02:00+01:00)", param_hint="--since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@cli.command(epilog=_example("provisioner schedule --once"))
@click.option("--once", is_flag=True, help="Run one cycle now and exit (for cron or a systemd timer).")
@_WAIT_OPTION
@click.pass_obj
def schedule(obj: Context, once: bool, wait: float | None) -> None:
    """Reconcile on the [schedule] cron; apply only when nothing is blocked and auto_apply is on."""
    from . import scheduler
    settings, state = obj.settings, obj.state()
    stop = StopFlag()
    stop.install()
    if once:
        cycle = scheduler.run_cycle(settings, state, should_stop=stop, wait_seconds=wait)
        click.echo(f"plan {cycle.plan_id}: " + _cycle_words(cycle))
        sys.exit(cycle.exit_code)
    first = scheduler.next_runs(settings.schedule, datetime.now(timezone.utc))[0]
    click.echo(f"scheduler: cron '{settings.schedule.cron}' ({settings.schedule.timezone}), "
               f"auto_apply {'on' if settings.schedule.auto_apply else 'off'}; "
               f"next run at {first.isoformat()}")
    scheduler.serve(obj.config_path, settings, state, stop)


def _cycle_words(cycle) -> str:
    if cycle.event == "blocked":
        return f"BLOCKED by the safety policy; review with: provisioner show {cycle.plan_id}"
    if cycle.event == "review":
        return f"waiting for review; apply with: provisioner apply {cycle.plan_id}"
    if cycle.event == "manual":
        return (("applied; " if cycle.applied else "") + "some items only a person can do; see them with: "
                f"provisioner show {cycle.plan_id}")
    if cycle.event == "failed":
        return "applied with failures (see provisioner runs)"
    if cycle.stopped:
        return f"stopped; the rest stays pending (resume with: provisioner apply {cycle.plan_id})"
    return "applied" if cycle.applied else "nothing to change"


@cli.command(epilog=_example("provisioner person E0001 --offline"))
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@click.option("--offline", is_flag=True, help="Do not contact the targets (no account state).")
@click.option("--changes", "changes", default=10, show_default=True, help="How many recent changes to show.")
@click.pass_obj
def person(obj: Context, key: str, as_json: bool, offline: bool, changes: int) -> None:
    """One person across everything: source record, link and account per target, last changes."""
    from . import render
    from .person import person_report
    report = person_report(obj.settings, obj.state(), key, contact_targets=not offline, changes=changes)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        render.print_person(report)
    sys.exit(EXIT_OK if report["source"] is not None or any(
        t["link"] for t in report["targets"].values()) else EXIT_FAILED)


@cli.command(epilog=_example("provisioner demo --dir /tmp/demo --keep"))
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Write the demo's files here (default: a temporary directory, removed afterwards).")
@click.option("--keep", is_flag=True, help="Leave the local servers running until Ctrl-C at the end.")
def demo(directory: str | None, keep: bool) -> None:
    """Run the whole job against local stand-ins of every supported target."""
    from .demo import run_demo
    sys.exit(run_demo(directory, keep=keep))


@cli.group()
def sandbox() -> None:
    """Local emulators of the vendor APIs (for trying things out and for tests)."""


@sandbox.command("serve", epilog=_example("provisioner --config sandbox.toml sandbox serve"))
@click.pass_obj
def sandbox_serve(obj: Context) -> None:
    """Serve every emulator of the config's [sandbox] section until Ctrl-C."""
    from .sandbox.serve import serve_until_stopped, start_emulators
    started = start_emulators(obj.settings.sandbox, obj.settings.config_path.name)
    for name, emulator in started:
        click.echo(f"sandbox {name}: serving on {emulator.base_url}")
    click.echo("press Ctrl-C to stop", err=True)
    serve_until_stopped(started)


def _register_connectors() -> None:
    # its module imports the target classes only when the command runs
    from .connectors_cli import connectors_command
    cli.add_command(connectors_command)


_register_connectors()


def _register_fleet() -> None:
    # the fleet's commands live in provisioner.fleet.commands; procrastinate loads only when one runs
    from .fleet.commands import fleet, worker
    cli.add_command(fleet)
    cli.add_command(worker)


_register_fleet()


def _refuse_future(plan, settings) -> None:
    """A plan made for a day still ahead (`plan --as-of`) holds changes not due yet."""
    if plan.as_of is None:
        return
    from .clock import today
    now = today(None, settings.policy.timezone)
    if plan.as_of > now.isoformat():
        raise click.UsageError(f"plan {plan.plan_id} was made as of {plan.as_of}, a day still ahead "
                               f"(today is {now.isoformat()}): it is for review only; make a new plan "
                               "on or after that day to apply it")


def _load_plan(state: StateDB, plan_id: str):
    if plan_id == "latest":
        plan_id = state.latest_plan_id() or ""
    plan = state.load_plan(plan_id) if plan_id else None
    if plan is None:
        raise click.UsageError(f"no stored plan with id '{plan_id}' (see `provisioner runs`)")
    return plan


def _is_lock_held(exc: Exception) -> bool:
    # runlock is loaded only when a command took the lock; otherwise exc cannot be LockHeld
    runlock = sys.modules.get("provisioner.runlock")
    return runlock is not None and isinstance(exc, runlock.LockHeld)


def main() -> None:
    try:
        # one name however it was started (also `python -m provisioner`): usage lines and the
        # shell completion variable _PROVISIONER_COMPLETE depend on it
        cli.main(prog_name="provisioner", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_CONFIG if exc.exit_code == 2 else exc.exit_code)
    except ConfigError as exc:
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(EXIT_CONFIG)
    except ProvisionerError as exc:
        if _is_lock_held(exc):
            click.echo(f"error: {redact(str(exc))}; try again later or pass --wait SECONDS", err=True)
            sys.exit(EXIT_LOCKED)
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("interrupted: run the same apply again to resume", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line, details only with -v
        log.debug("internal error", exc_info=True)
        click.echo(f"internal error: {type(exc).__name__}: {redact(str(exc))} "
                   "(please report it; run with -v for details)", err=True)
        if os.environ.get("PROVISIONER_DEBUG"):
            raise
        sys.exit(EXIT_FAILED)
