"""The written table: the value last written to each write-only attribute of an account.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "written",
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("identity", sa.String(), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("plan_id", sa.String(), nullable=True),
        sa.Column("written_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("target", "account_id", "path"),
    )


def downgrade() -> None:
    op.drop_table("written")
