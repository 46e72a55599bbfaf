"""Alembic environment: runs on the connection StateDB hands over (no alembic.ini)."""

from alembic import context
from sqlmodel import SQLModel

from provisioner import state  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
