"""policy inputs and decisions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approved_caller_ids',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('approved_caller_ids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approved_caller_ids_client'), ['client'], unique=False)

    op.create_table('appointments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('agreed_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_attempt_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['recorded_attempt_id'], ['attempts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointments_case_id'), ['case_id'], unique=False)

    op.create_table('policy_decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('next_allowed_at', sa.DateTime(), nullable=True),
    sa.Column('attempt_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policy_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_policy_decisions_case_at', ['case_id', 'at'], unique=False)

    # plain ADD COLUMN: a batch (copy-and-move) of a referenced table fails with foreign keys on
    op.add_column('attempts', sa.Column('decision', sa.JSON(), nullable=True))
    op.add_column('cases', sa.Column('flags', sa.JSON(), nullable=False, server_default='[]'))
    op.add_column('cases', sa.Column('care_approved_until', sa.DateTime(), nullable=True))
    op.add_column('phones', sa.Column('do_not_call', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('phones', sa.Column('refused', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('phones', schema=None) as batch_op:
        batch_op.drop_column('refused')
        batch_op.drop_column('do_not_call')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('care_approved_until')
        batch_op.drop_column('flags')

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('decision')

    with op.batch_alter_table('policy_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_decisions_case_at')

    op.drop_table('policy_decisions')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointments_case_id'))

    op.drop_table('appointments')
    with op.batch_alter_table('approved_caller_ids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approved_caller_ids_client'))

    op.drop_table('approved_caller_ids')
