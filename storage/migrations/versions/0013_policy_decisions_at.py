"""policy decisions by time: every dial reads the latest decision's time (the clock rule)

Without an index on `at` that read scanned every decision ever taken, inside the dial's
write transaction: its cost grew with the history (6 000 calls an hour make a million
decisions in a week), and every other writer waited for it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_policy_decisions_at', 'policy_decisions', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_policy_decisions_at', table_name='policy_decisions')
