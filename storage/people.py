"""SQLAlchemy models of the people who use dunline: users, teams, sign-in sessions, API
tokens and the login attempts the throttle counts (people/ holds the rules about them).

Secrets are never stored: a password as its argon2 hash, a session or API token as the
SHA-256 of the random token the browser or script holds, so a copy of the database signs
no one in.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class Team(Base):
    """A team of collectors under a team lead (a user with role team_lead and this team)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class User(Base):
    """A person who signs in. `role` is one of people.roles.Role; `client` ties a client
    user to the client whose reports they read; `team_id` places collectors and leads."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None, index=True)
    client: Mapped[str | None] = mapped_column(String(64), default=None)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    # the SIP endpoint this person uses on the floor (a collector's seat, a supervisor's listening phone)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class UserSession(Base):
    """A signed-in browser. `id` is the SHA-256 of the cookie's token; `csrf_token` must come
    back with every state change; a session ends at `expires_at`, after the idle timeout, at
    sign-out, or when its user's password changes or the user is disabled."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    ended_reason: Mapped[str | None] = mapped_column(String(32), default=None)


class ApiToken(Base):
    """A token for scripts (`Authorization: Bearer ...`), acting as its user with its role.
    `digest` is the SHA-256 of the token; `prefix` its first characters, to tell them apart."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class LoginAttempt(Base):
    """Every sign-in attempt, good or bad: what the login throttle counts (people/throttle.py)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),
                      Index("ix_login_attempts_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    username: Mapped[str] = mapped_column(String(64))  # as typed (lower-cased, cut to 64)
    ip: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
