"""anchored ledger: per-entry salt (format 2), checkpoint witness keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Existing entries keep their format-1 hashes (no salt); new entries are format 2.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ledger_entries') as batch:
        batch.add_column(sa.Column('salt', sa.String(length=32), nullable=True))
    with op.batch_alter_table('ledger_checkpoints') as batch:
        batch.add_column(sa.Column('witness_key', sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ledger_checkpoints') as batch:
        batch.drop_column('witness_key')
    with op.batch_alter_table('ledger_entries') as batch:
        batch.drop_column('salt')
