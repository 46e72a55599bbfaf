"""The account's lifecycle: when this tool disabled a linked account (the grace period
before a delete counts from it), and the day a plan was made for (`plan --as-of`).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("disabled_at", sa.String(), nullable=True))
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("as_of", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("as_of")
    with op.batch_alter_table("links") as batch:
        batch.drop_column("disabled_at")
