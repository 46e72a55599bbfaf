"""The state DB: runs, plans and their items, links, values written to
write-only attributes, and the audit log.

SQLModel over any SQLAlchemy URL (SQLite by default). Nothing else in the
engine remembers anything between runs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import (Column, Index, Text, UniqueConstraint, bindparam, case, delete, event, func, insert,
                        inspect, update)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.engine import make_url
from sqlmodel import Field, Session, SQLModel, create_engine, select

from .clock import utcnow
from .errors import ConfigError
from .model import APPLICABLE_OPS, OPS, RUNNABLE, Change, Link, Plan, PlanItem, Rejected, TargetSummary
from .runlock import hold
from .secrets import redact


log = logging.getLogger(__name__)

# the PostgreSQL schema of a fleet's registry and job queue (provisioner.fleet); here for StateDB
FLEET_SCHEMA = "provisioner_fleet"


class RunRecord(SQLModel, table=True):
    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    kind: str                                   # plan | apply | reconcile
    trigger: str = "cli"
    started_at: str
    finished_at: str | None = None
    status: str = "running"                     # running | ok | blocked | partial | stopped | failed | stale
    plan_id: str | None = Field(default=None, index=True)
    identities: int | None = None
    # a run after which the targets matched the source: its identity count is
    # the baseline the source-ratio guard compares against
    successful: bool = False
    counts: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))


class PlanRecord(SQLModel, table=True):
    __tablename__ = "plans"
    id: str = Field(primary_key=True)
    created_at: str
    status: str
    identities: int
    rejected: str = Field(sa_column=Column(Text, nullable=False))     # JSON list
    targets: str = Field(sa_column=Column(Text, nullable=False))      # JSON {name: summary}
    adopt: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON links to record
    # JSON: the plan's extra source parts (counts per source, upcoming dated changes)
    source_info: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    as_of: str | None = None                    # YYYY-MM-DD of `plan --as-of`; None: made for its own day


class PlanItemRecord(SQLModel, table=True):
    __tablename__ = "plan_items"
    __table_args__ = (Index("ix_plan_items_plan", "plan_id", "seq"),)
    plan_id: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    seq: int
    target: str
    op: str
    identity: str | None = None
    person: str | None = None                   # who the identity is to a person (an LDAP DN)
    account_id: str | None = None
    changes: str = Field(sa_column=Column(Text, nullable=False))
    attrs: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    lookup: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = "pending"
    error: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: str | None = None


class LinkRecord(SQLModel, table=True):
    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("target", "account_id", name="uq_links_account"),)
    target: str = Field(primary_key=True)
    identity: str = Field(primary_key=True)
    account_id: str
    # what the target told us about the account that other targets may use
    # (e.g. the extension OneCloud assigned); JSON object
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: str
    updated_at: str
    # when this tool's disable of the account was applied (ISO UTC); None: not disabled by
    # this tool. The grace period before a delete counts from it; an enable clears it.
    disabled_at: str | None = None


class WrittenRecord(SQLModel, table=True):
    """The value this tool last wrote to an account's write-only attribute (one
    the target cannot show, like CCS's agent settings): what the planner diffs
    against instead of a read."""
    __tablename__ = "written"
    target: str = Field(primary_key=True)
    account_id: str = Field(primary_key=True)
    path: str = Field(primary_key=True)
    identity: str | None = None                 # whose link the write was for
    value: str = Field(sa_column=Column(Text, nullable=False))   # JSON
    plan_id: str | None = None
    written_at: str


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit"
    id: int | None = Field(default=None, primary_key=True)
    at: str
    run_id: str | None = None
    plan_id: str | None = None
    item_id: str | None = None
    target: str
    op: str
    identity: str | None = None
    account_id: str | None = None
    before: str = Field(sa_column=Column(Text, nullable=False))
    after: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str


def _disabled_at_kept(links, account_id):
    """A link's disable date survives a write only while it points at the same account: this
    tool disabled that account, not the one a link moves to (which must never count as ours)."""
    return case((links.c.account_id == account_id, links.c.disabled_at), else_=None)


def _dump(value: Any, *, ordered: bool = False) -> str:
    # ordered: the keys keep their order (a plan's targets in the config's order, an item's
    # attributes in the mapping's), which is the order a person reviews them in
    return redact(json.dumps(value, ensure_ascii=False, sort_keys=not ordered, default=str))


class StateDB:
    """The few queries the engine needs, each in its own short transaction."""

    def __init__(self, url: str, schema: str | None = None):
        """`schema`: a PostgreSQL schema holding this state (one fleet tenant's), searched
        before `also_search` (where the fleet's job queue lives); the run lock is scoped to it."""
        self.url = url
        self.lock_scope = f"{schema}:" if schema else ""
        try:
            parsed = make_url(url)
        except Exception:
            raise ConfigError(f"state.url: not a database URL: {redact(url)!r}") from None
        sqlite_file = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            sqlite_file = Path(parsed.database)
            _prepare_sqlite_file(sqlite_file)
        self._local = threading.local()
        try:
            connect_args = {}
            if schema is not None:
                if parsed.get_backend_name() != "postgresql":
                    raise ConfigError("a tenant's state lives in PostgreSQL only")
                # tables resolve in the tenant's schema; the fleet schema after it holds the
                # job queue, so a job can be deferred in the transaction that stores a plan
                connect_args["options"] = f"-c search_path={schema},{FLEET_SCHEMA}"
            self.engine = create_engine(url, connect_args=connect_args)
            if parsed.get_backend_name() == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            started = time.perf_counter()
            with _migration_guard(sqlite_file):
                migrated = _upgrade(self.engine)
            # a one-off: what opening took beyond the usual (the apply estimate leaves it out)
            self.upgrade_seconds = time.perf_counter() - started if migrated else 0.0
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigError(f"state.url: cannot open the state DB: {redact(str(exc).splitlines()[0])}") from None

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[None]:
        """Group the writes made inside into one commit: the executor records a
        batch of items at once instead of paying a commit per write. `durable`
        makes SQLite sync this commit to disk even against a power cut (the
        in-flight marks a resume relies on). Nested use joins the outer one."""
        if getattr(self._local, "session", None) is not None:
            yield
            return
        with self.session() as s:
            sync_full = durable and self.engine.dialect.name == "sqlite"
            if sync_full:  # before the transaction begins: SQLite ignores it inside one
                s.connection().exec_driver_sql("PRAGMA synchronous=FULL")
            self._local.session = s
            try:
                yield
                s.commit()
            finally:
                self._local.session = None
                if sync_full:
                    s.connection().exec_driver_sql("PRAGMA synchronous=NORMAL")
                    s.commit()

    @contextmanager
    def _joined(self, commit: bool) -> Iterator[Session]:
        """The open transaction's session (a read sees its writes; a write waits for its
        commit), else a session of its own, committed when `commit`."""
        current = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self.session() as s:
            yield s
            if commit:
                s.commit()

    def _read(self):
        return self._joined(commit=False)

    def driver_connection(self):
        """The DB-API connection of the open transaction (see transaction()): for writes
        outside this module that must commit with it, e.g. deferring a fleet job."""
        current = getattr(self._local, "session", None)
        if current is None:
            raise RuntimeError("driver_connection() needs an open transaction()")
        return current.connection().connection.driver_connection

    def _write(self):
        return self._joined(commit=True)

    def close(self) -> None:
        self.engine.dispose()

    def lock(self, name: str, holder: str, wait_seconds: float = 0, lease_seconds: float = 60):
        """Context manager: hold the run lock `name`, or raise runlock.LockHeld after waiting."""
        return hold(self, name, holder, wait_seconds, lease_seconds)

    # -- runs -----------------------------------------------------------
    def start_run(self, run_id: str, kind: str, trigger: str = "cli", plan_id: str | None = None) -> None:
        with self.session() as s:
            s.add(RunRecord(id=run_id, kind=kind, trigger=trigger, started_at=utcnow(), plan_id=plan_id))
            s.commit()

    def finish_run(self, run_id: str, status: str, *, plan_id: str | None = None,
                   identities: int | None = None, successful: bool = False,
                   counts: dict | None = None, error: str | None = None) -> None:
        with self.session() as s:
            run = s.get(RunRecord, run_id)
            run.finished_at = utcnow()
            run.status = status
            run.plan_id = plan_id or run.plan_id
            run.identities = identities if identities is not None else run.identities
            run.successful = successful
            run.counts = _dump(counts or {})
            run.error = redact(error) if error else None
            s.add(run)
            s.commit()

    def runs(self, limit: int = 50) -> list[RunRecord]:
        with self.session() as s:
            return list(s.exec(select(RunRecord).order_by(RunRecord.started_at.desc(), RunRecord.id)
                               .limit(limit)))

    def baseline_identities(self) -> int | None:
        with self.session() as s:
            run = s.exec(select(RunRecord).where(RunRecord.successful == True)  # noqa: E712
                         .order_by(RunRecord.finished_at.desc()).limit(1)).first()
            return run.identities if run else None

    def baseline_sources(self) -> dict[str, int]:
        """Each source's identity count in the last successful run (from its plan's source counts)."""
        with self.session() as s:
            run = s.exec(select(RunRecord).where(RunRecord.successful == True)  # noqa: E712
                         .order_by(RunRecord.finished_at.desc()).limit(1)).first()
            plan = s.get(PlanRecord, run.plan_id) if run and run.plan_id else None
        sources = json.loads(plan.source_info or "{}").get("sources", {}) if plan else {}
        return {name: counts.get("identities", 0) for name, counts in sources.items()}

    # -- plans ------------------------------------------------------------
    def save_plan(self, plan: Plan) -> None:
        # Core inserts, all items in one executemany and one commit: building an ORM
        # object per item cost more than the planning of a 100,000-person plan's changes
        plans, items = PlanRecord.__table__, PlanItemRecord.__table__
        rows = [{"plan_id": plan.plan_id, "item_id": item.id, "seq": seq, "target": item.target,
                 "op": item.op, "identity": item.identity, "person": item.person,
                 "account_id": item.account_id,
                 "changes": _dump({k: c.to_dict() for k, c in item.changes.items()}, ordered=True),
                 "attrs": _dump(dict(item.attrs), ordered=True), "lookup": _dump([list(p) for p in item.lookup]),
                 "reason": redact(item.reason), "status": item.status, "error": None, "updated_at": None}
                for seq, item in enumerate(plan.items)]
        with self._write() as s:
            s.execute(insert(plans).values(
                id=plan.plan_id, created_at=plan.created_at, status=plan.status,
                identities=plan.identities,
                rejected=_dump([r.to_dict() for r in plan.rejected]),
                targets=_dump({n: t.to_dict() for n, t in plan.targets.items()}, ordered=True),
                adopt=_dump([l.__dict__ for l in plan.adopt]),
                source_info=_dump(dict(plan.source_info)), as_of=plan.as_of))
            if rows:
                s.execute(insert(items), rows)

    def load_plan(self, plan_id: str) -> Plan | None:
        with self.session() as s:
            record = s.get(PlanRecord, plan_id)
            if record is None:
                matches = list(s.exec(select(PlanRecord).where(PlanRecord.id.startswith(plan_id)).limit(2)))
                if len(matches) != 1:
                    return None
                record = matches[0]
            # Core rows, not ORM objects: an apply loads the whole plan before its first request
            items = PlanItemRecord.__table__
            rows = s.connection().execute(
                items.select().where(items.c.plan_id == record.id).order_by(items.c.seq)).all()
        targets = {n: TargetSummary(accounts=t["accounts"],
                                    counts={k: v for k, v in t.items() if k in OPS},
                                    unmanaged=t["unmanaged"], blocked=t["blocked"], block_reason=t["block_reason"],
                                    held=t.get("held", 0),
                                    orphans=tuple(t["orphans"]) if "orphans" in t else None)
                   for n, t in json.loads(record.targets).items()}
        return Plan(plan_id=record.id, created_at=record.created_at, status=record.status,
                    identities=record.identities,
                    rejected=tuple(Rejected(**r) for r in json.loads(record.rejected)),
                    targets=targets, items=tuple(_item_from_row(r) for r in rows),
                    adopt=tuple(Link(**l) for l in json.loads(record.adopt)),
                    source_info=json.loads(record.source_info or "{}"), as_of=record.as_of)

    def latest_plan_id(self) -> str | None:
        """The newest plan made for its own day (a `plan --as-of` is a look ahead, never `latest`)."""
        with self.session() as s:
            record = s.exec(select(PlanRecord).where(PlanRecord.as_of == None)  # noqa: E711
                            .order_by(PlanRecord.created_at.desc()).limit(1)).first()
            return record.id if record else None

    def pending_plans(self, target: str | None = None) -> list[PlanRecord]:
        """Plans with changes still to apply (an empty plan waits for nobody), optionally for one target.
        A plan made `--as-of` another day is a look at that day, never waiting to be applied."""
        waiting = (select(PlanItemRecord.plan_id)
                   .where(PlanItemRecord.op.in_(APPLICABLE_OPS), PlanItemRecord.status.in_(RUNNABLE)))
        if target is not None:
            waiting = waiting.where(PlanItemRecord.target == target)
        waiting = waiting.distinct()
        with self.session() as s:
            return list(s.exec(select(PlanRecord).where(PlanRecord.id.in_(waiting),
                                                        PlanRecord.as_of == None)  # noqa: E711
                               .order_by(PlanRecord.created_at.desc())))

    def set_plan_status(self, plan_id: str, status: str) -> None:
        with self.session() as s:
            record = s.get(PlanRecord, plan_id)
            record.status = status
            s.add(record)
            s.commit()

    def set_item_status(self, plan_id: str, item_id: str, status: str, error: str | None = None,
                        account_id: str | None = None) -> None:
        # Core statements, not ORM loads: the executor writes this twice per item
        values = {"status": status, "error": redact(error) if error else None, "updated_at": utcnow()}
        if account_id is not None:
            values["account_id"] = account_id
        items = PlanItemRecord.__table__
        with self._write() as s:
            s.execute(update(items).where(items.c.plan_id == plan_id, items.c.item_id == item_id)
                      .values(**values))

    def set_items_status(self, plan_id: str, rows: list[tuple[str, str, str | None, str | None]]) -> None:
        """Many (item id, status, error, account id) at once, one statement for all (executemany);
        an account id of None keeps the item's."""
        if not rows:
            return
        items = PlanItemRecord.__table__
        now = utcnow()
        statement = (update(items)
                     .where(items.c.plan_id == plan_id, items.c.item_id == bindparam("b_item"))
                     .values(status=bindparam("b_status"), error=bindparam("b_error"), updated_at=now,
                             account_id=func.coalesce(bindparam("b_account"), items.c.account_id)))
        with self._write() as s:
            s.execute(statement, [{"b_item": i, "b_status": st, "b_error": redact(e) if e else None,
                                   "b_account": a} for i, st, e, a in rows])

    # -- links ------------------------------------------------------------
    def links(self, target: str) -> dict[str, str]:
        with self.session() as s:
            rows = s.exec(select(LinkRecord.identity, LinkRecord.account_id).where(LinkRecord.target == target))
            return {identity: account_id for identity, account_id in rows}

    def link_counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.exec(select(LinkRecord.target, func.count()).group_by(LinkRecord.target))
            return {target: n for target, n in rows}

    def link_data(self, target: str) -> dict[str, dict]:
        """identity -> the data recorded with its link on `target`."""
        with self.session() as s:
            rows = s.exec(select(LinkRecord.identity, LinkRecord.data).where(LinkRecord.target == target))
            return {identity: json.loads(data) for identity, data in rows}

    def link(self, target: str, identity: str) -> LinkRecord | None:
        with self._read() as s:
            # populate_existing: a Core update in this transaction may have changed the row
            return s.get(LinkRecord, (target, identity), populate_existing=True)

    def save_links(self, target: str, rows: list[tuple[str, str, dict | None]]) -> None:
        """Many (identity, account id, data) links on `target` at once (see save_link)."""
        if not rows:
            return
        rows = list({i: (i, a, d) for i, a, d in rows}.values())   # an identity's last link wins
        links = LinkRecord.__table__
        now = utcnow()
        with self._write() as s:
            s.execute(delete(links).where(links.c.target == target,
                                          links.c.account_id == bindparam("b_account"),
                                          links.c.identity != bindparam("b_identity")),
                      [{"b_account": a, "b_identity": i} for i, a, _ in rows])
            wanted = {i for i, _, _ in rows}
            present = set(s.execute(select(links.c.identity).where(
                links.c.target == target, links.c.identity.in_(wanted))).scalars())
            for has_data in (True, False):
                update_rows = [{"b_identity": i, "b_account": a, **({"b_data": _dump(d)} if has_data else {})}
                               for i, a, d in rows if i in present and (d is not None) == has_data]
                if update_rows:
                    values = {"account_id": bindparam("b_account"), "updated_at": now,
                              "disabled_at": _disabled_at_kept(links, bindparam("b_account"))}
                    if has_data:
                        values["data"] = bindparam("b_data")
                    s.execute(update(links).where(links.c.target == target,
                                                  links.c.identity == bindparam("b_identity")).values(**values),
                              update_rows)
            new_rows = {i: (a, d) for i, a, d in rows if i not in present}
            if new_rows:
                s.execute(insert(links), [
                    {"target": target, "identity": i, "account_id": a, "data": _dump(d) if d is not None else "{}",
                     "created_at": now, "updated_at": now} for i, (a, d) in new_rows.items()])

    def save_link(self, target: str, identity: str, account_id: str, data: dict | None = None) -> None:
        """Point `identity` at `account_id` on `target`, dropping any stale link to that account."""
        now = utcnow()
        links = LinkRecord.__table__
        values = {"account_id": account_id, "updated_at": now}
        if data is not None:
            values["data"] = _dump(data)
        with self._write() as s:
            s.execute(delete(links).where(links.c.target == target, links.c.account_id == account_id,
                                          links.c.identity != identity))
            changed = s.execute(update(links).where(links.c.target == target, links.c.identity == identity)
                                .values(**values, disabled_at=_disabled_at_kept(links, account_id))).rowcount
            if not changed:
                s.execute(insert(links).values(target=target, identity=identity, created_at=now,
                                               **{"data": "{}", **values}))

    def disabled_at(self, target: str) -> dict[str, str]:
        """account id -> when this tool's disable of it was applied, for the linked accounts
        this tool disabled on `target`."""
        with self.session() as s:
            rows = s.exec(select(LinkRecord.account_id, LinkRecord.disabled_at)
                          .where(LinkRecord.target == target, LinkRecord.disabled_at != None))  # noqa: E711
            return {account_id: at for account_id, at in rows}

    def mark_disabled(self, target: str, rows: list[tuple[str, str, str | None]]) -> None:
        """Many (identity, account id, when this tool disabled it or None) at once: the links
        of those accounts record it (a link to another account is left alone)."""
        if not rows:
            return
        links = LinkRecord.__table__
        with self._write() as s:
            s.execute(update(links).where(links.c.target == target, links.c.identity == bindparam("b_identity"),
                                          links.c.account_id == bindparam("b_account"))
                      .values(disabled_at=bindparam("b_at")),
                      [{"b_identity": i, "b_account": a, "b_at": at} for i, a, at in rows])

    def forget_account(self, target: str, account_id: str) -> None:
        """A deleted account: its link and the values written to it go."""
        links, written = LinkRecord.__table__, WrittenRecord.__table__
        with self._write() as s:
            s.execute(delete(links).where(links.c.target == target, links.c.account_id == account_id))
            s.execute(delete(written).where(written.c.target == target, written.c.account_id == account_id))

    # -- values written to write-only attributes ---------------------------
    def written(self, target: str) -> dict[str, dict[str, Any]]:
        """account id -> {path: the value this tool last wrote} on `target`."""
        with self.session() as s:
            rows = s.exec(select(WrittenRecord.account_id, WrittenRecord.path, WrittenRecord.value)
                          .where(WrittenRecord.target == target))
            out: dict[str, dict[str, Any]] = {}
            for account_id, path, value in rows:
                out.setdefault(account_id, {})[path] = json.loads(value)
            return out

    def save_written(self, target: str, account_id: str, values: dict[str, Any], *,
                     identity: str | None = None, plan_id: str | None = None) -> None:
        """Remember `values` ({path: value}) as written to the account just now."""
        if not values:
            return
        now = utcnow()
        with self._write() as s:
            for path, value in values.items():
                row = s.get(WrittenRecord, (target, account_id, path))
                if row is None:
                    row = WrittenRecord(target=target, account_id=account_id, path=path, value="null",
                                        written_at=now)
                row.value, row.identity, row.plan_id, row.written_at = _dump(value), identity, plan_id, now
                s.add(row)

    # -- audit ------------------------------------------------------------
    def audit(self, *, run_id: str | None, plan_id: str | None, item: PlanItem, account_id: str | None,
              before: dict, after: dict, outcome: str) -> None:
        with self._write() as s:
            s.execute(insert(AuditRecord.__table__).values(
                at=utcnow(), run_id=run_id, plan_id=plan_id, item_id=item.id, target=item.target,
                op=item.op, identity=item.identity, account_id=account_id, before=_dump(before),
                after=_dump(after), outcome=redact(outcome)))

    def audit_many(self, rows: list[dict]) -> None:
        """Many audit rows at once: dicts of audit()'s keyword arguments."""
        if not rows:
            return
        at = utcnow()
        with self._write() as s:
            s.execute(insert(AuditRecord.__table__), [
                {"at": at, "run_id": r["run_id"], "plan_id": r["plan_id"], "item_id": r["item"].id,
                 "target": r["item"].target, "op": r["item"].op, "identity": r["item"].identity,
                 "account_id": r["account_id"], "before": _dump(r["before"]), "after": _dump(r["after"]),
                 "outcome": redact(r["outcome"])} for r in rows])

    def audit_rows(self, target: str | None = None, *, identity: str | None = None,
                   last: int | None = None, since: str | None = None) -> list[AuditRecord]:
        """Audit rows, oldest first; `last` keeps only the newest N; `since` an ISO UTC time
        (as utcnow() writes it); `identity` matches ignoring case, as a person types a key."""
        with self.session() as s:
            query = select(AuditRecord).order_by(AuditRecord.id.desc())
            if target:
                query = query.where(AuditRecord.target == target)
            if identity is not None:
                query = query.where(func.lower(AuditRecord.identity) == identity.lower())
            if since is not None:
                query = query.where(AuditRecord.at >= since)
            if last is not None:
                query = query.limit(last)
            return list(reversed(s.exec(query).all()))

    def last_failure(self, target: str) -> AuditRecord | None:
        with self.session() as s:
            return s.exec(select(AuditRecord).where(AuditRecord.target == target,
                                                    AuditRecord.outcome.startswith("failed"))
                          .order_by(AuditRecord.id.desc()).limit(1)).first()

    def last_success(self, target: str) -> str | None:
        """When a run last left `target` matching the source: an applied plan, or nothing to do."""
        with self.session() as s:
            plan_ids = select(PlanItemRecord.plan_id).where(PlanItemRecord.target == target)
            applied = s.exec(select(RunRecord.finished_at)
                             .where(RunRecord.kind == "apply", RunRecord.status == "ok",
                                    RunRecord.plan_id.in_(plan_ids))
                             .order_by(RunRecord.finished_at.desc()).limit(1)).first()
            in_step = s.exec(select(RunRecord.finished_at)
                             .where(RunRecord.successful == True)  # noqa: E712
                             .order_by(RunRecord.finished_at.desc()).limit(1)).first()
        return max(filter(None, (applied, in_step)), default=None)

    def plan_op_counts(self, plan_ids: list[str]) -> dict[str, dict[str, int]]:
        """plan id -> {op: items} for the given plans."""
        with self.session() as s:
            rows = s.exec(select(PlanItemRecord.plan_id, PlanItemRecord.op, func.count())
                          .where(PlanItemRecord.plan_id.in_(plan_ids))
                          .group_by(PlanItemRecord.plan_id, PlanItemRecord.op))
            out: dict[str, dict[str, int]] = {}
            for plan_id, op, n in rows:
                out.setdefault(plan_id, {})[op] = n
            return out


def _item_from_row(row) -> PlanItem:
    changes = {k: Change(v["from"], v["to"]) for k, v in json.loads(row.changes).items()}
    return PlanItem(id=row.item_id, target=row.target, op=row.op, identity=row.identity,
                    person=row.person, account_id=row.account_id, changes=changes, reason=row.reason,
                    status=row.status, error=row.error, attrs=json.loads(row.attrs),
                    lookup=tuple(tuple(p) for p in json.loads(row.lookup)))


_MIGRATIONS = Path(__file__).with_name("migrations")
_FIRST_REVISION = "0001"   # what create_all made before there were migrations
SCHEMA_HEAD = "0005"       # the newest file in migrations/versions (a test keeps them in step)


def _current_revision(engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _upgrade(engine) -> bool:
    """Bring the schema to the newest revision; a DB made before migrations is adopted, not rebuilt.
    True when it changed the schema."""
    if _current_revision(engine) == SCHEMA_HEAD:
        return False  # the usual case, without importing alembic (a third of a second per command)
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # two processes opening a new DB at once
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7281920364)")
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return False
        log.info("state DB: schema %s -> %s", current or "new", head)
        config.attributes["connection"] = conn
        tables = set(inspect(conn).get_table_names())
        if "runs" in tables and "alembic_version" not in tables:
            command.stamp(config, _FIRST_REVISION)
        command.upgrade(config, "head")
    return True


@contextmanager
def _migration_guard(sqlite_file: Path | None):
    """Serialise schema upgrades of one SQLite file across processes (PostgreSQL locks in _upgrade)."""
    if sqlite_file is None:
        yield
        return
    # A file of its own, never the DB: closing any descriptor of the DB file drops every
    # fcntl lock this process holds on it, SQLite's included, and another process may then
    # take itself for the last user and delete the WAL this one still writes to.
    fd = os.open(sqlite_file.with_name(sqlite_file.name + "-upgrade.lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # releases the flock


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers (status, person) run beside an apply, and with
    synchronous=NORMAL a commit no longer waits for an fsync: a killed process
    loses nothing committed; only a power cut may lose the last commits."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _prepare_sqlite_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only, before SQLite makes it 0644.
    An existing file is never opened here (see _migration_guard: a connection may hold it)."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(f"state.url: cannot create the state DB file {path}: {exc.strerror}") from None
