"""users' phones: the SIP endpoint a collector takes calls on (their seat on the floor) and a
supervisor listens from; one person per phone

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
        batch.create_unique_constraint('uq_users_phone', ['phone'])


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint('uq_users_phone', type_='unique')
        batch.drop_column('phone')
