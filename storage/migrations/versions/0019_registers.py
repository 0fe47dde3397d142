"""the registers: letter / SMS / lawyer-letter templates, correspondence items, field visits
and their attachments

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'register_templates',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('approved_at', sa.DateTime(), nullable=True),
        sa.Column('approved_by', sa.String(length=64), nullable=True),
        sa.Column('retired_at', sa.DateTime(), nullable=True),
        sa.Column('retired_by', sa.String(length=64), nullable=True),
        sa.Column('retired_reason', sa.Text(), nullable=True),
    )
    op.create_index('ix_register_templates_kind', 'register_templates', ['kind'])
    op.create_table(
        'correspondence_items',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('template_id', sa.Integer(), sa.ForeignKey('register_templates.id'), nullable=False),
        sa.Column('recipient_name', sa.String(length=100), nullable=False),
        sa.Column('recipient_relation', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('address', sa.String(length=300), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=False),
        sa.Column('registered_at', sa.DateTime(), nullable=False),
        sa.Column('registered_by', sa.String(length=64), nullable=False),
        sa.Column('reply', sa.Text(), nullable=True),
        sa.Column('reply_at', sa.DateTime(), nullable=True),
        sa.Column('reply_registered_at', sa.DateTime(), nullable=True),
        sa.Column('reply_registered_by', sa.String(length=64), nullable=True),
    )
    op.create_index('ix_correspondence_items_case_sent', 'correspondence_items', ['case_id', 'sent_at'])
    op.create_index('ix_correspondence_items_template_id', 'correspondence_items', ['template_id'])
    op.create_table(
        'field_visits',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('requested_at', sa.DateTime(), nullable=False),
        sa.Column('requested_by', sa.String(length=64), nullable=False),
        sa.Column('member_a_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('member_b_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=True),
        sa.Column('departed_at', sa.DateTime(), nullable=True),
        sa.Column('arrived_at', sa.DateTime(), nullable=True),
        sa.Column('left_at', sa.DateTime(), nullable=True),
        sa.Column('returned_at', sa.DateTime(), nullable=True),
        sa.Column('report', sa.Text(), nullable=True),
        sa.Column('reported_at', sa.DateTime(), nullable=True),
        sa.Column('reported_by', sa.String(length=64), nullable=True),
        sa.Column('purge_due_at', sa.DateTime(), nullable=False),
        sa.Column('purged_at', sa.DateTime(), nullable=True),
        sa.Column('purged_by', sa.String(length=64), nullable=True),
    )
    op.create_index('ix_field_visits_case_id', 'field_visits', ['case_id'])
    op.create_index('ix_field_visits_member_a_id', 'field_visits', ['member_a_id'])
    op.create_index('ix_field_visits_member_b_id', 'field_visits', ['member_b_id'])
    op.create_index('ix_field_visits_purge_due', 'field_visits', ['purged_at', 'purge_due_at'])
    op.create_index('ix_field_visits_state', 'field_visits', ['state'])
    op.create_table(
        'visit_attachments',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('visit_id', sa.Integer(), sa.ForeignKey('field_visits.id'), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('media_type', sa.String(length=64), nullable=False),
        sa.Column('file_name', sa.String(length=200), nullable=True),
        sa.Column('path', sa.String(length=300), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(), nullable=False),
        sa.Column('uploaded_by', sa.String(length=64), nullable=False),
        sa.Column('purged_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_visit_attachments_visit_id', 'visit_attachments', ['visit_id'])


def downgrade() -> None:
    op.drop_table('visit_attachments')
    op.drop_table('field_visits')
    op.drop_table('correspondence_items')
    op.drop_table('register_templates')
