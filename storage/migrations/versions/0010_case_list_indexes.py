"""case list indexes: a collector's and a team's cases in case-number order; account and
name lookups

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_cases_collector_id', 'cases')
    op.drop_index('ix_cases_team_id', 'cases')
    op.create_index('ix_cases_collector_case', 'cases', ['collector_id', 'id'])
    op.create_index('ix_cases_team_case', 'cases', ['team_id', 'id'])
    op.create_index('ix_cases_account', 'cases', ['account'])
    op.create_index('ix_cases_debtor_name', 'cases', ['debtor_name'])


def downgrade() -> None:
    op.drop_index('ix_cases_debtor_name', 'cases')
    op.drop_index('ix_cases_account', 'cases')
    op.drop_index('ix_cases_team_case', 'cases')
    op.drop_index('ix_cases_collector_case', 'cases')
    op.create_index('ix_cases_team_id', 'cases', ['team_id'])
    op.create_index('ix_cases_collector_id', 'cases', ['collector_id'])
