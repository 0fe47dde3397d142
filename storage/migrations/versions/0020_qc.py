"""quality control: the weekly samples of each collector's recorded calls, the QC queue, the
scorecards (each with its ledger entry)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'qc_samples',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('week', sa.String(length=8), nullable=False),
        sa.Column('collector_user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('collector_phone', sa.String(length=32), nullable=False),
        sa.Column('seed', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('candidates', sa.Integer(), nullable=False),
        sa.Column('candidates_sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.UniqueConstraint('week', 'collector_user_id', name='uq_qc_samples_week_collector'),
    )
    op.create_index('ix_qc_samples_week', 'qc_samples', ['week'])
    op.create_index('ix_qc_samples_collector_user_id', 'qc_samples', ['collector_user_id'])
    op.create_table(
        'qc_queue',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('sample_id', sa.Integer(), sa.ForeignKey('qc_samples.id'), nullable=False),
        sa.Column('recording_id', sa.Integer(), sa.ForeignKey('recordings.id'), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.UniqueConstraint('recording_id'),
    )
    op.create_index('ix_qc_queue_sample_id', 'qc_queue', ['sample_id'])
    op.create_index('ix_qc_queue_state_sample', 'qc_queue', ['state', 'sample_id'])
    op.create_table(
        'qc_scores',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('item_id', sa.Integer(), sa.ForeignKey('qc_queue.id'), nullable=False),
        sa.Column('recording_id', sa.Integer(), sa.ForeignKey('recordings.id'), nullable=False),
        sa.Column('version', sa.String(length=16), nullable=False),
        sa.Column('items', sa.JSON(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('comments', sa.Text(), nullable=False),
        sa.Column('scored_by', sa.String(length=64), nullable=False),
        sa.Column('scored_at', sa.DateTime(), nullable=False),
        sa.Column('revises_id', sa.Integer(), sa.ForeignKey('qc_scores.id'), nullable=True),
        sa.Column('ledger_seq', sa.Integer(), nullable=True),
        sa.UniqueConstraint('revises_id'),
    )
    op.create_index('ix_qc_scores_item_id', 'qc_scores', ['item_id'])
    op.create_index('ix_qc_scores_recording_id', 'qc_scores', ['recording_id'])


def downgrade() -> None:
    op.drop_table('qc_scores')
    op.drop_table('qc_queue')
    op.drop_table('qc_samples')
