"""One run at a time, across processes and machines, held in the state DB.

PostgreSQL: a session advisory lock on a connection kept open for the run;
the server frees it when that connection dies, so a killed holder never
blocks the next run. SQLite: a lease row in `locks` with an expiry that a
heartbeat thread pushes forward while the run lives; a lease whose holder
was killed simply expires. Both record who holds the lock and since when in
`locks`, for the message the loser prints.
"""

from __future__ import annotations

import hashlib
import re
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from .clock import utcnow
from .errors import ProvisionerError

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.5
RUN_LOCK = "run"   # the one lock reconcile, apply and scheduled cycles share


class LockRecord(SQLModel, table=True):
    __tablename__ = "locks"
    name: str = Field(primary_key=True)
    token: str                                  # this acquisition; only it may renew or release
    holder: str                                 # "reconcile pid 123 on host": for messages
    since: str
    expires: float | None = None                # epoch seconds; the SQLite lease only


class LockHeld(ProvisionerError):
    """Another run holds the lock; str() says who and since when."""

    def __init__(self, name: str, holder: str | None, since: str | None):
        who = f"holder {holder}, since {since}" if holder else "holder unknown"
        super().__init__(f"another run holds the lock '{name}' ({who})")
        self.holder, self.since = holder, since


def describe_holder(what: str) -> str:
    return f"{what} pid {os.getpid()} on {socket.gethostname()}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from the lock's name."""
    return int.from_bytes(hashlib.sha256(f"provisioner:{name}".encode()).digest()[:8], "big", signed=True)



def postgres_lock_held(engine, key_name: str) -> bool:
    """Whether some session holds the PostgreSQL advisory lock of `key_name` (the lock's scope
    and name). A bigint key shows in pg_locks as its high and low 32 bits."""
    key = advisory_key(key_name) & 0xFFFFFFFFFFFFFFFF
    with engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = :hi AND objid = :lo AND objsubid = 1)"),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF}).scalar())

@contextmanager
def hold(db, name: str, holder: str, wait_seconds: float, lease_seconds: float) -> Iterator[None]:
    """Hold lock `name` for the block; wait up to `wait_seconds`, then raise LockHeld."""
    table = LockRecord.__table__
    token = uuid.uuid4().hex
    postgres = db.engine.dialect.name == "postgresql"
    # advisory locks are per database: a fleet tenant's lock must not stop another tenant
    key_name = db.lock_scope + name
    deadline = time.monotonic() + max(0.0, wait_seconds)
    conn = db.engine.connect() if postgres else None
    try:
        while True:
            if postgres:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                        {"k": advisory_key(key_name)}).scalar())
                conn.commit()
            else:
                got = _take_lease(db, table, name, token, holder, lease_seconds)
            if got:
                break
            if time.monotonic() >= deadline:
                with db.engine.connect() as c:
                    row = c.execute(select(table.c.holder, table.c.since)
                                    .where(table.c.name == name)).first()
                raise LockHeld(name, *(row or (None, None)))
            time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())) or _POLL_SECONDS)
        if postgres:  # the advisory lock is the exclusion; the row only says who
            with db.engine.begin() as c:
                c.execute(delete(table).where(table.c.name == name))
                c.execute(insert(table).values(name=name, token=token, holder=holder, since=utcnow(),
                                               expires=None))
        stop = threading.Event()
        beat = None
        if not postgres:
            beat = threading.Thread(target=_heartbeat, args=(db, table, name, token, lease_seconds, stop),
                                    name=f"lock-{name}", daemon=True)
            beat.start()
        log.info("lock %s taken by %s", name, holder)
        try:
            yield
        finally:
            stop.set()
            if beat is not None:
                beat.join()
            with db.engine.begin() as c:
                c.execute(delete(table).where(table.c.name == name, table.c.token == token))
            if postgres:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(key_name)})
                conn.commit()
    finally:
        if conn is not None:
            conn.close()


def _take_lease(db, table, name, token, holder, lease_seconds) -> bool:
    now = time.time()
    values = dict(token=token, holder=holder, since=utcnow(), expires=now + lease_seconds)
    try:
        with db.engine.begin() as c:
            c.execute(insert(table).values(name=name, **values))
        return True
    except IntegrityError:
        pass
    with db.engine.begin() as c:
        row = c.execute(select(table.c.token, table.c.holder).where(table.c.name == name)).first()
        if row is not None and _holder_is_dead(row.holder):
            # killed on this very host: no need to wait for its lease to run out
            taken = c.execute(update(table).where(table.c.name == name, table.c.token == row.token)
                              .values(**values)).rowcount
            why = f"its holder ({row.holder}) is no longer running"
        else:  # otherwise taken over only when the lease ran out
            taken = c.execute(update(table).where(table.c.name == name, table.c.expires < now)
                              .values(**values)).rowcount
            why = "the previous holder's lease had expired"
    if taken:
        log.warning("lock %s: %s; taken over", name, why)
    return bool(taken)


def _holder_is_dead(holder: str) -> bool:
    """True only for a holder on this host whose process is gone (see describe_holder)."""
    found = re.search(r" pid (\d+) on (\S+)$", holder or "")
    if not found or found.group(2) != socket.gethostname():
        return False
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def _heartbeat(db, table, name, token, lease_seconds, stop: threading.Event) -> None:
    while not stop.wait(lease_seconds / 3):
        try:
            with db.engine.begin() as c:
                c.execute(update(table).where(table.c.name == name, table.c.token == token)
                          .values(expires=time.time() + lease_seconds))
        except Exception as exc:  # a busy DB: the next beat tries again well before expiry
            log.warning("lock %s: could not renew the lease: %s", name, type(exc).__name__)
