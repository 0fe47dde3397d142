"""dispositions: what came of each call; a phone retired (a wrong number); an agreed time
cancelled (its disposition corrected)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dispositions',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('attempt_id', sa.String(length=64), sa.ForeignKey('attempts.id'), nullable=False),
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), nullable=False),
        sa.Column('phone_id', sa.Integer(), sa.ForeignKey('phones.id'), nullable=True),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=True),
        sa.Column('promise_date', sa.Date(), nullable=True),
        sa.Column('callback_at', sa.DateTime(), nullable=True),
        sa.Column('appointment_id', sa.Integer(), sa.ForeignKey('appointments.id'), nullable=True),
        sa.Column('corrects_id', sa.Integer(), sa.ForeignKey('dispositions.id'), nullable=True),
        sa.Column('entered_by', sa.String(length=64), nullable=False),
        sa.Column('entered_at', sa.DateTime(), nullable=False),
        sa.Column('effects', sa.JSON(), nullable=False),
        sa.UniqueConstraint('corrects_id'),
    )
    op.create_index('ix_dispositions_attempt_id', 'dispositions', ['attempt_id'])
    op.create_index('ix_dispositions_case_entered', 'dispositions', ['case_id', 'entered_at'])
    op.create_index('ix_dispositions_promise_date', 'dispositions', ['promise_date'])
    op.add_column('phones', sa.Column('retired_at', sa.DateTime(), nullable=True))
    op.add_column('phones', sa.Column('retired_by', sa.String(length=64), nullable=True))
    op.add_column('appointments', sa.Column('cancelled_at', sa.DateTime(), nullable=True))
    op.add_column('appointments', sa.Column('cancelled_by', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('appointments') as batch_op:
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('cancelled_at')
    with op.batch_alter_table('phones') as batch_op:
        batch_op.drop_column('retired_by')
        batch_op.drop_column('retired_at')
    op.drop_table('dispositions')
