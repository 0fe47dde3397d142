"""batches: the client's batches, their imports and error reports; cases' intake columns

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'batches',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.UniqueConstraint('client', 'code', name='uq_batches_client_code'),
    )
    op.create_index('ix_batches_client', 'batches', ['client'])
    op.create_table(
        'batch_imports',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('batch_id', sa.Integer(), sa.ForeignKey('batches.id'), nullable=True),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('file_name', sa.String(length=255), nullable=False),
        sa.Column('file_sha256', sa.String(length=64), nullable=False),
        sa.Column('encoding', sa.String(length=16), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('problem', sa.Text(), nullable=True),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('rows_imported', sa.Integer(), nullable=False),
        sa.Column('rows_unchanged', sa.Integer(), nullable=False),
        sa.Column('rows_rejected', sa.Integer(), nullable=False),
        sa.Column('arrears_cents', sa.BigInteger(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('by', sa.String(length=64), nullable=False),
    )
    op.create_index('ix_batch_imports_batch_id', 'batch_imports', ['batch_id'])
    op.create_index('ix_batch_imports_file_sha256', 'batch_imports', ['file_sha256'])
    op.create_table(
        'batch_import_errors',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('import_id', sa.Integer(), sa.ForeignKey('batch_imports.id'), nullable=False),
        sa.Column('row', sa.Integer(), nullable=False),
        sa.Column('column', sa.String(length=100), nullable=False),
        sa.Column('problem', sa.Text(), nullable=False),
    )
    op.create_index('ix_batch_import_errors_import_id', 'batch_import_errors', ['import_id'])
    # plain ADD COLUMN: a batch (copy-and-move) of a referenced table fails with foreign keys on
    if op.get_bind().dialect.name == 'sqlite':  # SQLite adds a reference only inline
        op.execute('ALTER TABLE cases ADD COLUMN batch_id INTEGER REFERENCES batches (id)')
    else:
        op.add_column('cases', sa.Column('batch_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_cases_batch_id', 'cases', 'batches', ['batch_id'], ['id'])
    op.create_index('ix_cases_batch_id', 'cases', ['batch_id'])
    op.add_column('cases', sa.Column('account', sa.String(length=40), nullable=True))
    op.add_column('cases', sa.Column('id_number', sa.String(length=18), nullable=True))
    op.add_column('cases', sa.Column('overdue_since', sa.Date(), nullable=True))
    op.create_index('ix_cases_overdue_since', 'cases', ['overdue_since'])
    op.add_column('cases', sa.Column('segment', sa.String(length=64), nullable=True))
    op.add_column('cases', sa.Column('address', sa.String(length=300), nullable=True))
    op.add_column('cases', sa.Column('intake_digest', sa.String(length=64), nullable=True))
    op.add_column('cases', sa.Column('status_reason', sa.Text(), nullable=True))
    op.add_column('cases', sa.Column('status_changed_at', sa.DateTime(), nullable=True))
    op.add_column('phones', sa.Column('relation', sa.String(length=16), nullable=True))
    op.add_column('phones', sa.Column('added_at', sa.DateTime(), nullable=True))
    op.add_column('phones', sa.Column('added_by', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for column in ('added_by', 'added_at', 'relation'):
        op.drop_column('phones', column)
    op.drop_index('ix_cases_overdue_since', 'cases')
    for column in ('status_changed_at', 'status_reason', 'intake_digest', 'address', 'segment', 'overdue_since',
                   'id_number', 'account'):
        op.drop_column('cases', column)
    op.drop_index('ix_cases_batch_id', 'cases')
    if op.get_bind().dialect.name != 'sqlite':  # SQLite cannot drop a referencing column: it stays, unused
        op.drop_constraint('fk_cases_batch_id', 'cases', type_='foreignkey')
        op.drop_column('cases', 'batch_id')
    op.drop_table('batch_import_errors')
    op.drop_table('batch_imports')
    op.drop_table('batches')
