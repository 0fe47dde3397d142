"""campaigns: cases dialled in one mode; attempts name their campaign and whether the
debtor was abandoned (answered, no collector ready within the wait: the message), and how long
after the answer the debtor was with a collector; answering-machine detection's verdict

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaigns',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('client', sa.String(length=64), nullable=True),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('selection', sa.JSON(), nullable=False),
        sa.Column('phone_order', sa.JSON(), nullable=False),
        sa.Column('retry_spacing_s', sa.Integer(), nullable=False),
        sa.Column('caller_ids', sa.JSON(), nullable=False),
        sa.Column('amd', sa.Boolean(), nullable=False),
        sa.Column('target_abandon_rate', sa.Float(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('status_changed_by', sa.String(length=64), nullable=True),
        sa.Column('status_changed_at', sa.DateTime(), nullable=True),
        sa.UniqueConstraint('name'),
    )
    # added in place (no table copy: attempts is referenced by recordings, decisions, ...)
    if op.get_bind().dialect.name == 'sqlite':  # SQLite adds a column with its reference, not a constraint
        op.execute('ALTER TABLE attempts ADD COLUMN campaign_id INTEGER REFERENCES campaigns (id)')
    else:
        op.add_column('attempts', sa.Column('campaign_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_attempts_campaign_id', 'attempts', 'campaigns', ['campaign_id'], ['id'])
    op.add_column('attempts', sa.Column('abandoned', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('attempts', sa.Column('answer_to_bridge_s', sa.Float(), nullable=True))
    op.add_column('attempts', sa.Column('amd', sa.String(length=16), nullable=True))
    op.create_index('ix_attempts_campaign_created', 'attempts', ['campaign_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_attempts_campaign_created', table_name='attempts')
    # SQLite (3.35+) drops a column in place; its reference goes with it
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_attempts_campaign_id', 'attempts', type_='foreignkey')
    op.drop_column('attempts', 'amd')
    op.drop_column('attempts', 'answer_to_bridge_s')
    op.drop_column('attempts', 'abandoned')
    op.drop_column('attempts', 'campaign_id')
    op.drop_table('campaigns')
