"""people: users, teams, sign-in sessions, API tokens, login attempts; who works a case

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'teams',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(length=64), nullable=False, unique=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('username', sa.String(length=32), nullable=False, unique=True),
        sa.Column('display_name', sa.String(length=100), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('team_id', sa.Integer(), sa.ForeignKey('teams.id'), nullable=True),
        sa.Column('client', sa.String(length=64), nullable=True),
        sa.Column('locale', sa.String(length=8), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('password_changed_at', sa.DateTime(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('disabled_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_users_role', 'users', ['role'])
    op.create_index('ix_users_team_id', 'users', ['team_id'])
    op.create_table(
        'user_sessions',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('ended_reason', sa.String(length=32), nullable=True),
    )
    op.create_index('ix_user_sessions_user_id', 'user_sessions', ['user_id'])
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False, unique=True),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_api_tokens_user_id', 'api_tokens', ['user_id'])
    op.create_table(
        'login_attempts',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
    )
    op.create_index('ix_login_attempts_username_at', 'login_attempts', ['username', 'at'])
    op.create_index('ix_login_attempts_ip_at', 'login_attempts', ['ip', 'at'])
    # plain ADD COLUMN: a batch (copy-and-move) of a referenced table fails with foreign keys on
    if op.get_bind().dialect.name == 'sqlite':  # SQLite adds a reference only inline
        op.execute('ALTER TABLE cases ADD COLUMN team_id INTEGER REFERENCES teams (id)')
        op.execute('ALTER TABLE cases ADD COLUMN collector_id INTEGER REFERENCES users (id)')
    else:
        op.add_column('cases', sa.Column('team_id', sa.Integer(), nullable=True))
        op.add_column('cases', sa.Column('collector_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_cases_team_id', 'cases', 'teams', ['team_id'], ['id'])
        op.create_foreign_key('fk_cases_collector_id', 'cases', 'users', ['collector_id'], ['id'])
    op.create_index('ix_cases_team_id', 'cases', ['team_id'])
    op.create_index('ix_cases_collector_id', 'cases', ['collector_id'])


def downgrade() -> None:
    op.drop_index('ix_cases_collector_id', 'cases')
    op.drop_index('ix_cases_team_id', 'cases')
    if op.get_bind().dialect.name != 'sqlite':  # SQLite cannot drop a referencing column: they stay, unused
        op.drop_constraint('fk_cases_collector_id', 'cases', type_='foreignkey')
        op.drop_constraint('fk_cases_team_id', 'cases', type_='foreignkey')
        op.drop_column('cases', 'collector_id')
        op.drop_column('cases', 'team_id')
    op.drop_table('login_attempts')
    op.drop_table('api_tokens')
    op.drop_table('user_sessions')
    op.drop_table('users')
    op.drop_table('teams')
