"""The fleet's tenants: a registry table, and each tenant's state in a schema of its own.

Isolation is a PostgreSQL schema per tenant (`tenant_<name>`): the existing tables and
Alembic migrations serve each tenant unchanged, a tenant's runs, plans, links, audit log
and run lock are out of reach of every other's query, and dropping a tenant is one
DROP SCHEMA. The registry and procrastinate's job queue live in the schema
`provisioner_fleet`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ..config import DB_ENV
from ..errors import ConfigError
from ..secrets import redact
from ..state import FLEET_SCHEMA, StateDB

TENANT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# two processes creating the fleet's tables at once (fleet add on two hosts, workers starting)
_SETUP_LOCK = 7281920365


@dataclass(frozen=True)
class Tenant:
    name: str
    config: str          # absolute path of its config.toml, the same on every worker host
    added_at: str

    @property
    def schema(self) -> str:
        return f"tenant_{self.name}"


def fleet_url() -> str:
    """The fleet database's SQLAlchemy URL from PROVISIONER_DB; ConfigError if it is not PostgreSQL."""
    url = os.environ.get(DB_ENV, "").strip()
    if not url:
        raise ConfigError(f"the fleet needs its PostgreSQL database: set {DB_ENV} to its URL "
                          "(e.g. postgresql+psycopg://provisioner@db.example.com/provisioner)")
    try:
        backend = make_url(url).get_backend_name()
    except Exception:
        raise ConfigError(f"{DB_ENV}: not a database URL: {redact(url)!r}") from None
    if backend != "postgresql":
        raise ConfigError(f"{DB_ENV} must be a PostgreSQL URL for the fleet (it is {backend})")
    return url


def libpq_dsn(url: str) -> str:
    """The SQLAlchemy URL as psycopg itself takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def check_name(name: str) -> str:
    if not TENANT_NAME.fullmatch(name):
        raise ConfigError(f"tenant name {name!r}: use lower-case letters, digits and _, starting "
                          "with a letter, at most 40 characters")
    return name


class Registry:
    """The tenants table in the fleet database."""

    def __init__(self, url: str | None = None):
        self.url = url or fleet_url()
        try:
            self.engine = create_engine(self.url, connect_args={"connect_timeout": 10})
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SETUP_LOCK})
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {FLEET_SCHEMA}"))
                conn.execute(text(f"CREATE TABLE IF NOT EXISTS {FLEET_SCHEMA}.tenants ("
                                  "name text PRIMARY KEY, config text NOT NULL, "
                                  "added_at timestamptz NOT NULL DEFAULT now())"))
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{DB_ENV}: cannot open the fleet database: "
                              f"{redact(str(exc).splitlines()[0])}") from None

    def close(self) -> None:
        self.engine.dispose()

    def list(self) -> list[Tenant]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT name, config, added_at FROM {FLEET_SCHEMA}.tenants "
                                     "ORDER BY name")).all()
        return [Tenant(r.name, r.config, r.added_at.isoformat(timespec="seconds")) for r in rows]

    def get(self, name: str) -> Tenant:
        for tenant in self.list():
            if tenant.name == name:
                return tenant
        raise ConfigError(f"no tenant named {name!r} in the fleet (see: provisioner fleet list)")

    def add(self, name: str, config: str, check: bool = True) -> Tenant:
        from ..config import load_config, read_toml
        check_name(name)
        path = str(Path(config).expanduser().resolve())
        if check:
            load_config(path)   # a mistake is reported now, not at 2 a.m. on some worker
        else:
            read_toml(Path(path), config, "config file")   # its secrets may exist on the workers only
        with self.engine.begin() as conn:
            taken = conn.execute(text(f"SELECT 1 FROM {FLEET_SCHEMA}.tenants WHERE name = :n"),
                                 {"n": name}).first()
            if taken:
                raise ConfigError(f"the fleet has a tenant named {name!r} already")
            conn.execute(text(f"INSERT INTO {FLEET_SCHEMA}.tenants (name, config) VALUES (:n, :c)"),
                         {"n": name, "c": path})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "tenant_{name}"'))
        tenant = self.get(name)
        self.state(tenant).close()   # its tables, migrated to the head
        return tenant

    def remove(self, name: str, drop_state: bool = False) -> None:
        tenant = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {FLEET_SCHEMA}.tenants WHERE name = :n"), {"n": name})
            if drop_state:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{tenant.schema}" CASCADE'))

    def state(self, tenant: Tenant) -> StateDB:
        return StateDB(self.url, schema=tenant.schema)


def resolve(name: str) -> Tenant:
    """The tenant `--tenant NAME` means; ConfigError (exit 2) when there is none."""
    registry = Registry()
    try:
        return registry.get(check_name(name))
    finally:
        registry.close()
