"""suppressions: the do-not-call list; who approved a caller ID

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'suppressions',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('client', sa.String(length=64), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.Column('added_by', sa.String(length=64), nullable=False),
        sa.Column('removed_at', sa.DateTime(), nullable=True),
        sa.Column('removed_by', sa.String(length=64), nullable=True),
        sa.Column('removed_why', sa.Text(), nullable=True),
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), nullable=True),
    )
    op.create_index('ix_suppressions_number', 'suppressions', ['number'])
    op.add_column('approved_caller_ids', sa.Column('added_by', sa.String(length=64), nullable=True))
    op.add_column('approved_caller_ids', sa.Column('added_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column('approved_caller_ids', 'added_at')
    op.drop_column('approved_caller_ids', 'added_by')
    op.drop_table('suppressions')
