"""payments: a receipt is registered once per client (a unique index, also the lookup of a
file's receipts)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-09
"""
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('uq_payments_client_receipt', 'payments', ['client', 'receipt_no'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_payments_client_receipt', table_name='payments')
