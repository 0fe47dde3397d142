"""counters: the counts /metrics reads (calls by outcome, recordings, recordings by flag),
kept in the transactions that change them; seeded here from the rows they count

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""
import json
from collections import Counter

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = op.create_table(
        'counters',
        sa.Column('name', sa.String(length=32), primary_key=True),
        sa.Column('label', sa.String(length=64), primary_key=True),
        sa.Column('value', sa.BigInteger(), nullable=False),
    )
    bind = op.get_bind()
    attempts = sa.table('attempts', sa.column('outcome', sa.String))
    recordings = sa.table('recordings', sa.column('flags', sa.JSON))
    counts: Counter = Counter()
    for outcome, n in bind.execute(sa.select(attempts.c.outcome, sa.func.count())
                                   .where(attempts.c.outcome.is_not(None)).group_by(attempts.c.outcome)):
        counts[('calls', outcome)] = n
    counts[('recordings', '')] = bind.execute(sa.select(sa.func.count()).select_from(recordings)).scalar() or 0
    flags_text = sa.cast(recordings.c.flags, sa.Text)  # compared and read as text on either backend
    for (text,) in bind.execute(sa.select(flags_text).where(flags_text != '[]')):
        for flag in json.loads(text) if text else ():
            counts[('recordings_flagged', flag)] += 1
    rows = [{'name': name, 'label': label, 'value': n} for (name, label), n in sorted(counts.items()) if n]
    if rows:
        op.bulk_insert(counters, rows)


def downgrade() -> None:
    op.drop_table('counters')
