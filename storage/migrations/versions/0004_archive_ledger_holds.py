"""archive: ledger, checkpoints, legal holds, recording tombstones; case campaign

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_entries',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('entry_hash')
    )
    op.create_index('ix_ledger_entries_action', 'ledger_entries', ['action'], unique=False)
    op.create_index('ix_ledger_entries_subject', 'ledger_entries', ['subject'], unique=False)

    op.create_table('ledger_checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_ledger_checkpoints_seq', 'ledger_checkpoints', ['seq'], unique=False)

    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=True),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('placed_by', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('placed_at', sa.DateTime(), nullable=False),
    sa.Column('released_by', sa.String(length=64), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_legal_holds_case_id', 'legal_holds', ['case_id'], unique=False)
    op.create_index('ix_legal_holds_recording_id', 'legal_holds', ['recording_id'], unique=False)

    # plain ADD COLUMN: a batch (copy-and-move) of a referenced table fails with foreign keys on
    op.add_column('recordings', sa.Column('store', sa.String(length=8), nullable=False,
                                          server_default='fs'))
    op.add_column('recordings', sa.Column('playback_path', sa.String(length=512), nullable=True))
    op.add_column('recordings', sa.Column('ledger_seq', sa.Integer(), nullable=True))
    op.add_column('recordings', sa.Column('purged_at', sa.DateTime(), nullable=True))
    op.add_column('cases', sa.Column('campaign', sa.String(length=64), nullable=True))
    op.create_index('ix_cases_campaign', 'cases', ['campaign'], unique=False)

    # retrieval for compliance (measured in bench/lookup_by_case.py at 1M recordings):
    # by case newest first, by date, by phone, by collector
    op.create_index('ix_recordings_case_ended', 'recordings', ['case_id', 'call_ended_at'], unique=False)
    op.drop_index('ix_recordings_case_id', table_name='recordings')
    op.create_index('ix_recordings_call_ended_at', 'recordings', ['call_ended_at'], unique=False)
    op.create_index('ix_attempts_number', 'attempts', ['number'], unique=False)
    op.create_index('ix_attempts_collector', 'attempts', ['collector'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_attempts_collector', table_name='attempts')
    op.drop_index('ix_attempts_number', table_name='attempts')
    op.drop_index('ix_recordings_call_ended_at', table_name='recordings')
    op.create_index('ix_recordings_case_id', 'recordings', ['case_id'], unique=False)
    op.drop_index('ix_recordings_case_ended', table_name='recordings')
    op.drop_index('ix_cases_campaign', table_name='cases')
    with op.batch_alter_table('cases') as batch_op:
        batch_op.drop_column('campaign')
    with op.batch_alter_table('recordings') as batch_op:
        batch_op.drop_column('purged_at')
        batch_op.drop_column('ledger_seq')
        batch_op.drop_column('playback_path')
        batch_op.drop_column('store')
    op.drop_table('legal_holds')
    op.drop_table('ledger_checkpoints')
    op.drop_table('ledger_entries')
