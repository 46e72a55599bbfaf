"""`provisioner fleet status`: each tenant and target at a glance, from the tenants' state
and procrastinate's job table."""

from __future__ import annotations

import click
from sqlalchemy import create_engine, text

from ..runlock import LockRecord, postgres_lock_held
from ..state import FLEET_SCHEMA
from .jobs import APPLY_TASK, PLAN_TASK
from .tenants import Registry


def fleet_report(url: str) -> dict:
    registry = Registry(url)
    try:
        tenants = registry.list()
        jobs = _jobs(url)
        report = {"tenants": {}, "workers": _workers(url)}
        for tenant in tenants:
            report["tenants"][tenant.name] = _tenant(registry, tenant, jobs)
        return report
    finally:
        registry.close()


def _tenant(registry, tenant, jobs) -> dict:
    from ..config import load_config
    from ..errors import ConfigError
    entry = {"config": tenant.config, "error": None, "plan_jobs": _counts(jobs, PLAN_TASK, tenant.name),
             "targets": {}}
    try:
        targets = list(load_config(tenant.config).targets)
    except ConfigError as exc:
        entry["error"] = str(exc)
        targets = []
    state = registry.state(tenant)
    try:
        with state.session() as s:
            holders = {row.name: row.holder for row in s.query(LockRecord).all()}
        # the row outlives a SIGKILLed holder; PostgreSQL dropped its advisory lock with its session
        holders = {name: holder for name, holder in holders.items()
                   if postgres_lock_held(state.engine, state.lock_scope + name)}
        for target in targets:
            failure = state.last_failure(target)
            lock = f"{tenant.name}/{target}"
            entry["targets"][target] = {
                "last_success": state.last_success(target),
                "pending_plans": [p.id for p in state.pending_plans(target)],
                "last_failure": None if failure is None else {"at": failure.at, "op": failure.op,
                                                              "identity": failure.identity,
                                                              "outcome": failure.outcome},
                "jobs": _counts(jobs, APPLY_TASK, lock),
                "held_by": holders.get(f"apply:{target}"),
            }
    finally:
        state.close()
    return entry


def _counts(jobs: list[dict], task: str, lock: str) -> dict:
    counts = {"queued": 0, "running": 0, "retrying": 0, "failed": 0, "workers": []}
    for job in jobs:
        if job["task_name"] != task or job["lock"] != lock:
            continue
        if job["status"] == "todo":
            counts["retrying" if job["attempts"] else "queued"] += 1
        elif job["status"] == "doing":
            counts["running"] += 1
            counts["workers"].append(job["worker_id"])
        elif job["status"] == "failed":
            counts["failed"] += 1
    return counts


def _jobs(url: str) -> list[dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.execute(text(f"SELECT to_regclass('{FLEET_SCHEMA}.procrastinate_jobs')")).scalar() is None:
                return []
            rows = conn.execute(text(
                f"SELECT id, task_name, lock, status::text AS status, attempts, worker_id "
                f"FROM {FLEET_SCHEMA}.procrastinate_jobs ORDER BY id")).mappings().all()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


def _workers(url: str) -> list[dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.execute(text(f"SELECT to_regclass('{FLEET_SCHEMA}.procrastinate_workers')")).scalar() is None:
                return []
            rows = conn.execute(text(f"SELECT id, last_heartbeat FROM {FLEET_SCHEMA}.procrastinate_workers "
                                     "ORDER BY id")).mappings().all()
            return [{"id": r["id"], "last_heartbeat": r["last_heartbeat"].isoformat(timespec="seconds")}
                    for r in rows]
    finally:
        engine.dispose()


def print_report(report: dict) -> None:
    click.echo(f"workers: {len(report['workers'])} alive" + "".join(
        f"\n  worker {w['id']}: last heartbeat {w['last_heartbeat']}" for w in report["workers"]))
    for name, tenant in report["tenants"].items():
        plans = tenant["plan_jobs"]
        click.echo(f"tenant {name}: plan jobs queued {plans['queued']}, running {plans['running']}, "
                   f"failed {plans['failed']}" + (f"; config error: {tenant['error']}" if tenant["error"] else ""))
        for target, info in tenant["targets"].items():
            jobs = info["jobs"]
            line = (f"  {target}: last success {info['last_success'] or 'never'}; "
                    f"plans waiting {len(info['pending_plans'])}; apply jobs queued {jobs['queued']}, "
                    f"running {jobs['running']}, retrying {jobs['retrying']}, failed {jobs['failed']}")
            if info["held_by"]:
                line += f"; held by {info['held_by']}"
            if info["last_failure"]:
                line += f"; last failure {info['last_failure']['at']}: {info['last_failure']['outcome']}"
            click.echo(line)
    if not report["tenants"]:
        click.echo("no tenants")
