"""payments (their imports and row errors; each credited to a collector and campaign) and the
cases' paid amount; complaints with their 24-hour clock

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payment_imports',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('file_name', sa.String(length=255), nullable=False),
        sa.Column('file_sha256', sa.String(length=64), nullable=False),
        sa.Column('encoding', sa.String(length=16), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('problem', sa.Text(), nullable=True),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_imported', sa.Integer(), nullable=False),
        sa.Column('rows_unchanged', sa.Integer(), nullable=False),
        sa.Column('rows_rejected', sa.Integer(), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('by', sa.String(length=64), nullable=False),
    )
    op.create_index('ix_payment_imports_file_sha256', 'payment_imports', ['file_sha256'])
    op.create_table(
        'payment_import_errors',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('import_id', sa.Integer(), sa.ForeignKey('payment_imports.id'), nullable=False),
        sa.Column('row', sa.Integer(), nullable=False),
        sa.Column('column', sa.String(length=100), nullable=False),
        sa.Column('problem', sa.Text(), nullable=False),
    )
    op.create_index('ix_payment_import_errors_import_id', 'payment_import_errors', ['import_id'])
    op.create_table(
        'payments',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), nullable=False),
        sa.Column('account', sa.String(length=40), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('paid_on', sa.Date(), nullable=False),
        sa.Column('receipt_no', sa.String(length=64), nullable=False),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('row_digest', sa.String(length=64), nullable=False),
        sa.Column('import_id', sa.Integer(), sa.ForeignKey('payment_imports.id'), nullable=True),
        sa.Column('credited_user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('credited_campaign_id', sa.Integer(), sa.ForeignKey('campaigns.id'), nullable=True),
        sa.Column('credited_attempt_id', sa.String(length=64), sa.ForeignKey('attempts.id'), nullable=True),
        sa.Column('credit_rule', sa.String(length=16), nullable=False),
        sa.Column('imported_at', sa.DateTime(), nullable=False),
        sa.Column('imported_by', sa.String(length=64), nullable=False),
        sa.UniqueConstraint('row_digest'),
    )
    op.create_index('ix_payments_case_id', 'payments', ['case_id'])
    op.create_index('ix_payments_paid_on', 'payments', ['paid_on'])
    op.create_index('ix_payments_credited_user_id', 'payments', ['credited_user_id'])
    op.add_column('cases', sa.Column('paid_cents', sa.BigInteger(), nullable=False, server_default='0'))
    op.create_table(
        'complaints',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), nullable=True),
        sa.Column('collector_user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('registered_at', sa.DateTime(), nullable=False),
        sa.Column('registered_by', sa.String(length=64), nullable=False),
        sa.Column('deadline_at', sa.DateTime(), nullable=False),
        sa.Column('warned_at', sa.DateTime(), nullable=True),
        sa.Column('overdue_at', sa.DateTime(), nullable=True),
        sa.Column('dialing_allowed_by', sa.String(length=64), nullable=True),
        sa.Column('dialing_allowed_at', sa.DateTime(), nullable=True),
        sa.Column('follow_up_attempt_id', sa.String(length=64), sa.ForeignKey('attempts.id'), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=True),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.Column('closed_by', sa.String(length=64), nullable=True),
    )
    op.create_index('ix_complaints_case_id', 'complaints', ['case_id'])
    op.create_index('ix_complaints_collector_user_id', 'complaints', ['collector_user_id'])
    op.create_index('ix_complaints_open_deadline', 'complaints', ['closed_at', 'deadline_at'])


def downgrade() -> None:
    op.drop_table('complaints')
    op.drop_column('cases', 'paid_cents')
    op.drop_table('payments')
    op.drop_table('payment_import_errors')
    op.drop_table('payment_imports')
