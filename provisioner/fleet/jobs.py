"""The fleet's jobs on procrastinate: plan a tenant, apply one target of its plan, notify.

Locks (procrastinate's `lock`, one job per lock at a time across all workers):
`<tenant>` for its plan job, `<tenant>/<target>` for an apply, so one tenant's targets
apply in parallel on different workers and never twice at once. A plan job's
`queueing_lock` (`plan:<tenant>`) keeps at most one waiting: nightly cycles do not pile up.
The apply and notify jobs are deferred in the transaction that stores the plan.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, JobAborted
from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

from .. import flow, notify
from ..errors import ConfigError, ProvisionerError
from ..executor import apply_plan
from ..model import APPLICABLE_OPS, FAILED, IN_FLIGHT, PENDING, STALE
from ..reports.common import PERSON_OPS
from ..runlock import RUN_LOCK, LockHeld, describe_holder
from ..secrets import redact
from ..state import FLEET_SCHEMA, StateDB
from .tenants import Registry, Tenant, libpq_dsn

log = logging.getLogger(__name__)

PLAN_TASK, APPLY_TASK, NOTIFY_TASK, TICK_TASK = (
    "provisioner.fleet.plan", "provisioner.fleet.apply", "provisioner.fleet.notify", "provisioner.fleet.tick")
# how long an apply job waits for the target's lock (a stalled job retried while its first
# worker still runs waits for it, then finds nothing left to do)
APPLY_LOCK_WAIT_S = 600


class TenantFailed(ProvisionerError):
    """A tenant's job failed on the tenant's side (a target down, items failed): recorded, notified."""


class ApplyInProgress(ProvisionerError):
    """A plan job found the tenant's previous applies still queued or running: it waits its turn."""


def make_app(url: str, *, max_size: int = 10) -> App:
    connector = PsycopgConnector(conninfo=libpq_dsn(url), min_size=1, max_size=max_size,
                                 kwargs={"options": f"-c search_path={FLEET_SCHEMA}"})
    app = App(connector=connector)
    _register(app)
    return app


def ensure_schema(url: str) -> None:
    """procrastinate's tables in the fleet schema, made once (by whoever comes first)."""
    import psycopg
    from procrastinate.schema import SchemaManager
    Registry(url).close()   # the fleet schema and its tenants table
    with psycopg.connect(libpq_dsn(url), options=f"-c search_path={FLEET_SCHEMA}") as conn:
        conn.execute("SELECT pg_advisory_xact_lock(7281920366)")
        if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
            conn.execute(SchemaManager.get_schema())


class _InTransaction(SyncPsycopgConnector):
    """procrastinate on a connection already in a transaction (the plan's): its defers commit,
    or roll back, with that transaction."""

    def __init__(self, connection):
        super().__init__()
        self._connection = connection

    def open(self, pool=None) -> None:
        pass

    def close(self) -> None:
        pass

    def execute_query(self, query, **arguments) -> None:
        with self._get_cursor(self._connection) as cursor:
            cursor.execute(query, self._wrap_json(arguments))

    def execute_query_one(self, query, **arguments):
        return self.execute_query_one_with_connection(self._connection, query, **arguments)

    def execute_query_all(self, query, **arguments):
        return self.execute_query_all_with_connection(self._connection, query, **arguments)


def _in_transaction(state: StateDB) -> App:
    return App(connector=_InTransaction(state.driver_connection()))


def defer_plan(app: App, tenant: str, trigger: str) -> bool:
    """Queue a cycle of `tenant`; False when one is already waiting."""
    try:
        app.configure_task(PLAN_TASK, lock=tenant, queueing_lock=f"plan:{tenant}").defer(
            tenant=tenant, trigger=trigger)
        return True
    except AlreadyEnqueued:
        return False


# -- the tasks ---------------------------------------------------------------

class _Tenant:
    """One job's view of a tenant: its registry row, its config read afresh, its state DB."""

    def __init__(self, url: str, name: str):
        registry = Registry(url)
        try:
            self.tenant: Tenant = registry.get(name)
        finally:
            registry.close()
        from ..config import load_config
        self.settings = load_config(self.tenant.config)
        self.state = StateDB(url, schema=self.tenant.schema)

    @classmethod
    def open_for_job(cls, app: App, name: str) -> "_Tenant":
        """The tenant, or TenantFailed: a removed tenant or a config mistake leaves nothing
        to retry until a person acts."""
        try:
            return cls(fleet_url_of(app), name)
        except ConfigError as exc:
            raise TenantFailed(f"tenant {name}: {exc}") from None

    def close(self) -> None:
        self.state.close()


def _register(app: App) -> None:
    @app.task(name=PLAN_TASK, pass_context=True,
              retry=RetryStrategy(max_attempts=40, wait=15, retry_exceptions={ApplyInProgress, LockHeld}))
    def plan_tenant(context, tenant: str, trigger: str = "fleet") -> str:
        return _plan(app, tenant, trigger)

    @app.task(name=APPLY_TASK, pass_context=True,
              retry=RetryStrategy(max_attempts=20, wait=1, retry_exceptions={JobAborted, LockHeld}))
    def apply_target(context, tenant: str, plan_id: str, target: str) -> str:
        return _apply(app, tenant, plan_id, target, context.should_abort)

    @app.task(name=NOTIFY_TASK, retry=RetryStrategy(max_attempts=3, wait=30))
    def notify_tenant(tenant: str, event: str, plan_id: str, run_id: str, target: str | None = None,
                      unreadable: dict | None = None) -> None:
        _notify(app, tenant, event, plan_id, run_id, target, unreadable)

    @app.periodic(cron="* * * * *", periodic_id="tenant-crons")
    @app.task(name=TICK_TASK, queueing_lock="tick")
    def tick(timestamp: int) -> None:
        _tick(app, timestamp)


def fleet_url_of(app: App) -> str:
    from .tenants import fleet_url
    return fleet_url()   # every worker runs with PROVISIONER_DB set


def _plan(app: App, name: str, trigger: str) -> str:
    job = _Tenant.open_for_job(app, name)
    try:
        settings, state = job.settings, job.state
        if _applies_waiting(app, name):
            raise ApplyInProgress(f"tenant {name}: its last plan is still being applied")
        lock = settings.lock
        with state.lock(RUN_LOCK, describe_holder(f"fleet plan {name}"), lock.wait_seconds,
                        lock.lease_seconds):
            decided: dict = {}

            def on_saved(plan, unreadable, run_id) -> None:
                decided.update(_decide(settings, state, name, plan, unreadable, run_id))

            with flow.open_targets(settings) as handles:
                outcome = flow.build_plan(settings, state, handles, trigger="fleet", on_saved=on_saved)
        words = f"plan {outcome.plan.plan_id}: {decided['event'] or 'nothing needs a person'}"
        log.info("tenant %s: %s", name, words)
        if outcome.unreadable:
            raise TenantFailed(f"tenant {name}: " + "; ".join(
                f"target {t}: {why}" for t, why in outcome.unreadable.items()))
        return words
    finally:
        job.close()


def _decide(settings, state, tenant, plan, unreadable, run_id) -> dict:
    """What `schedule` would do with this plan, as jobs deferred in the plan's transaction:
    a blocked or review-needing plan is notified, never applied."""
    jobs = _in_transaction(state)

    def tell(event: str) -> dict:
        jobs.configure_task(NOTIFY_TASK).defer(tenant=tenant, event=event, plan_id=plan.plan_id,
                                               run_id=run_id, unreadable=unreadable or None)
        return {"event": event}

    changes = any(i.op in APPLICABLE_OPS for i in plan.items)
    for_a_person = any(i.op in PERSON_OPS for i in plan.items)
    if plan.status == "blocked" or unreadable:
        return tell("blocked")
    if not changes:
        return tell("manual") if for_a_person else {"event": None}
    if not settings.schedule.auto_apply:
        return tell("review")
    for target in sorted({i.target for i in plan.items if i.op in APPLICABLE_OPS}):
        jobs.configure_task(APPLY_TASK, lock=f"{tenant}/{target}").defer(
            tenant=tenant, plan_id=plan.plan_id, target=target)
    if for_a_person:
        tell("manual")
    return {"event": "applying"}


def _applies_waiting(app: App, tenant: str) -> bool:
    rows = app.connector.get_sync_connector().execute_query_all(
        "SELECT 1 FROM procrastinate_jobs WHERE task_name = %(task)s AND lock LIKE %(prefix)s "
        "AND status IN ('todo', 'doing') LIMIT 1", task=APPLY_TASK, prefix=f"{tenant}/%")
    return bool(rows)


def only_target(plan, target: str):
    """The part of `plan` that one apply job carries out."""
    return replace(plan, targets={target: plan.targets[target]},
                   items=tuple(i for i in plan.items if i.target == target),
                   adopt=tuple(link for link in plan.adopt if link.target == target))


def _apply(app: App, name: str, plan_id: str, target: str, should_stop) -> str:
    job = _Tenant.open_for_job(app, name)
    try:
        settings, state = job.settings, job.state
        plan = state.load_plan(plan_id)
        if plan is None or target not in plan.targets:
            raise TenantFailed(f"tenant {name}: no plan {plan_id} for target {target}")
        with state.lock(f"apply:{target}", describe_holder(f"fleet apply {target}"), APPLY_LOCK_WAIT_S,
                        settings.lock.lease_seconds), \
                flow.open_targets(settings, [target]) as handles:
            run_id = flow.new_id()
            state.start_run(run_id, "apply", "fleet", plan_id=plan_id)
            try:
                result = apply_plan(only_target(plan, target), handles, state, run_id=run_id,
                                    should_stop=should_stop)
            except BaseException as exc:
                state.finish_run(run_id, "failed", error=redact(str(exc)) or type(exc).__name__)
                raise
            whole = _plan_status(state, plan_id)
            if whole is not None:
                state.set_plan_status(plan_id, whole)
            status = "stopped" if result.stopped else "ok" if result.plan_status == "applied" \
                else result.plan_status
            state.finish_run(run_id, status, identities=plan.identities, counts=result.counts,
                             successful=whole == "applied" and set(plan.targets) == set(settings.targets))
        if result.stopped:
            # the worker is shutting down: the items in flight were recorded, the rest stays
            # pending; procrastinate queues the job again for another worker
            raise JobAborted(f"tenant {name} target {target}: stopped; the rest of plan {plan_id} is pending")
        if result.failed or result.stale:
            app.configure_task(NOTIFY_TASK).defer(tenant=name, event="failed", plan_id=plan_id,
                                                  run_id=run_id, target=target)
            raise TenantFailed(f"tenant {name} target {target}: {result.failed} item(s) failed, "
                               f"{result.stale} stale (see provisioner --tenant {name} runs)")
        return f"plan {plan_id} target {target}: " + ", ".join(
            f"{k} {v}" for k, v in sorted(result.counts.items()))
    finally:
        job.close()


def _plan_status(state: StateDB, plan_id: str) -> str | None:
    """The whole plan's status once no target has items left to run (None until then)."""
    items = [i for i in state.load_plan(plan_id).items if i.op in APPLICABLE_OPS]
    if any(i.status in (PENDING, IN_FLIGHT) for i in items):   # another target's job is not done yet
        return None
    if any(i.status == FAILED for i in items):
        return "partial"
    if any(i.status == STALE for i in items):
        return "stale"
    return "applied"


def _notify(app: App, name: str, event: str, plan_id: str, run_id: str, target: str | None,
            unreadable: dict | None) -> None:
    from ..reports import plan_html
    job = _Tenant(fleet_url_of(app), name)
    try:
        plan = job.state.load_plan(plan_id)
        items = [i for i in plan.items if target is None or i.target == target]
        counts: dict[str, int] = {}
        for item in items:
            key = item.status if event == "failed" else item.op
            counts[key] = counts.get(key, 0) + 1
        failures = [{"target": i.target, "op": i.op, "identity": i.identity, "status": i.status,
                     "error": i.error} for i in items if i.status in (FAILED, STALE)]
        doc = notify.summary(event, run_id=run_id, plan=plan, counts=counts, failures=failures,
                             unreadable=unreadable)
        doc["tenant"] = name
        doc["text"] = f"[{name}] {doc['text']}"
        report = plan_html(plan) if job.settings.notify.smtp is not None else None
        notify.deliver(job.settings.notify, doc, report_html=report)
    finally:
        job.close()


def _tick(app: App, timestamp: int) -> None:
    """Each minute: queue a cycle of every tenant whose cron fired in that minute. The config
    is read each time, so a new tenant or an edited cron needs no worker restart."""
    from ..config import load_config
    from ..scheduler import next_runs
    now = datetime.fromtimestamp(timestamp, timezone.utc)
    registry = Registry(fleet_url_of(app))
    try:
        tenants = registry.list()
    finally:
        registry.close()
    for tenant in tenants:
        try:
            schedule = load_config(tenant.config).schedule
        except ConfigError as exc:
            log.error("tenant %s: no cycle queued, the config has a mistake: %s", tenant.name, exc)
            continue
        fires = next_runs(schedule, now - timedelta(seconds=59))
        if fires and fires[0] <= now and defer_plan(app, tenant.name, "schedule"):
            log.info("tenant %s: cycle queued (cron '%s')", tenant.name, schedule.cron)
