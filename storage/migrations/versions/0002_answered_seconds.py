"""attempts.answered_seconds: the debtor channel's time from answer to hang-up

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN: a batch (copy-and-move) of a referenced table fails with foreign keys on
    op.add_column("attempts", sa.Column("answered_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch_op:
        batch_op.drop_column("answered_seconds")
