"""durable facts: ingest jobs, journal replay marks, audit event ids, the PBX's start time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Existing attempts with a recording get their ingest job: `archived` when the recording row
exists, `due` when the call is over without one (found again: it will be archived, or
stays a critical incident until a person resolves it), `recording` while the call runs.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_jobs',
    sa.Column('attempt_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('next_try_at', sa.DateTime(), nullable=True),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ),
    sa.PrimaryKeyConstraint('attempt_id')
    )
    op.create_index('ix_ingest_jobs_state', 'ingest_jobs', ['state'], unique=False)
    op.create_index('ix_ingest_jobs_next_try_at', 'ingest_jobs', ['next_try_at'], unique=False)
    op.create_table('journal_applied',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events') as batch:
        batch.add_column(sa.Column('event_id', sa.String(length=36), nullable=True))
        batch.create_unique_constraint('uq_audit_events_event_id', ['event_id'])
    with op.batch_alter_table('attempts') as batch:
        batch.add_column(sa.Column('pbx_started_at', sa.DateTime(), nullable=True))
    op.execute("""
        INSERT INTO ingest_jobs (attempt_id, state, created_at, due_at, next_try_at, tries, done_at)
        SELECT a.id,
               CASE WHEN r.id IS NOT NULL THEN 'archived'
                    WHEN a.state IN ('ended', 'unknown') THEN 'due'
                    ELSE 'recording' END,
               COALESCE(a.bound_at, a.created_at),
               CASE WHEN r.id IS NULL AND a.state IN ('ended', 'unknown')
                    THEN COALESCE(a.ended_at, a.created_at) END,
               CASE WHEN r.id IS NULL AND a.state IN ('ended', 'unknown')
                    THEN COALESCE(a.ended_at, a.created_at) END,
               0,
               r.created_at
        FROM attempts a LEFT JOIN recordings r ON r.attempt_id = a.id
        WHERE a.recording_name IS NOT NULL
    """)


def downgrade() -> None:
    with op.batch_alter_table('attempts') as batch:
        batch.drop_column('pbx_started_at')
    with op.batch_alter_table('audit_events') as batch:
        batch.drop_constraint('uq_audit_events_event_id', type_='unique')
        batch.drop_column('event_id')
    op.drop_table('journal_applied')
    op.drop_index('ix_ingest_jobs_next_try_at', table_name='ingest_jobs')
    op.drop_index('ix_ingest_jobs_state', table_name='ingest_jobs')
    op.drop_table('ingest_jobs')
