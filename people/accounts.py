"""Accounts: users and teams, sign-in, sessions and API tokens, over the database.

The rules live in people/roles.py, people/passwords.py and people/sessions.py; this module
reads and writes the rows (storage/people.py) and audits every change with who made it.
A signed-in request carries a `Principal`: the user as the guard and the audit see them.

Refusals are `AccountError`s whose message can be shown to the person: a sign-in refusal
never says whether the user name exists.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from people.passwords import PasswordHasher, WeakPassword, check_password
from people.roles import Role
from people.sessions import (Attempt, SessionPolicy, ThrottlePolicy, digest, new_api_token, new_token)
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.people import ApiToken, LoginAttempt, Team, User, UserSession

log = logging.getLogger("dunline.people")

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
PHONE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,31}")  # a PJSIP endpoint name (pbx.collectors)
TEAM_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
LOCALES = ("zh-CN", "en")
SYSTEM_ACTOR = "system"


class AccountError(ValueError):
    """A refused account operation; the message is for the person who asked."""


class SignInRefused(AccountError):
    """Wrong user name or password, a disabled account, or too many tries (`retry_after`)."""

    def __init__(self, message: str, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user (by session or API token)."""

    user_id: int
    username: str
    display_name: str
    role: str
    team_id: int | None
    client: str | None
    locale: str
    via: str  # "session" | "token" | "phone" (a call from their phone's keypad)
    session_id: str | None = None
    csrf_token: str | None = None
    phone: str | None = None  # their SIP endpoint on the floor

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(self.csrf_token and presented) and hmac.compare_digest(self.csrf_token, presented or "")


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    token: str  # the session cookie's value: given to the browser, never stored


def check_username(text: str | None) -> str:
    name = (text or "").strip().lower()
    if not USERNAME.fullmatch(name):
        raise AccountError("user name: 2-32 of a-z 0-9 . _ -, starting with a letter or digit")
    return name


def check_phone(text: str | None) -> str:
    phone = (text or "").strip()
    if not PHONE.fullmatch(phone):
        raise AccountError("phone: the SIP endpoint's name (1-32 of 0-9 A-Z a-z _ -), e.g. 6001")
    return phone


def check_role(text: str | None) -> Role:
    try:
        return Role(text or "")
    except ValueError:
        raise AccountError(f"role: one of {', '.join(r.value for r in Role)}") from None


def check_display_name(text: str | None) -> str:
    name = (text or "").strip()
    if not 1 <= len(name) <= 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise AccountError("display name: 1-100 printable characters")
    return name


def check_locale(text: str | None) -> str:
    if text not in LOCALES:
        raise AccountError(f"language: one of {', '.join(LOCALES)}")
    return text


def _principal(user: User, via: str, session: UserSession | None = None) -> Principal:
    return Principal(user_id=user.id, username=user.username, display_name=user.display_name, role=user.role,
                     team_id=user.team_id, client=user.client, locale=user.locale, via=via,
                     session_id=session.id if session else None,
                     csrf_token=session.csrf_token if session else None, phone=user.phone)


class Accounts:
    def __init__(self, db: Database, clock: Clock, hasher: PasswordHasher | None = None,
                 sessions: SessionPolicy = SessionPolicy(), throttle: ThrottlePolicy = ThrottlePolicy()) -> None:
        self.db = db
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.sessions = sessions
        self.throttle = throttle

    # -- users and teams -------------------------------------------------------------
    async def add_team(self, name: str, *, by: str) -> Team:
        name = (name or "").strip()
        if not TEAM_NAME.fullmatch(name):
            raise AccountError("team name: 1-64 printable characters")
        async with self.db.session() as s:
            if await s.scalar(select(Team).where(Team.name == name)) is not None:
                raise AccountError(f"team {name!r} exists")
            team = Team(name=name, created_at=self.clock())
            s.add(team)
            await s.flush()
            await repo.audit(s, at=self.clock(), actor=by, action="team.added", subject=f"team:{team.id}", name=name)
            return team

    async def teams(self) -> Sequence[Team]:
        async with self.db.session() as s:
            return (await s.scalars(select(Team).order_by(Team.name))).all()

    async def add_user(self, *, username: str, display_name: str, role: str, password: str, by: str,
                       team: str | None = None, client: str | None = None, locale: str = "zh-CN",
                       phone: str | None = None) -> User:
        name, shown, the_role = check_username(username), check_display_name(display_name), check_role(role)
        phone = check_phone(phone) if phone else None
        locale = check_locale(locale)
        try:
            check_password(password, name)
        except WeakPassword as exc:
            raise AccountError(str(exc)) from None
        if the_role is Role.CLIENT and not (client or "").strip():
            raise AccountError("a client user needs the client whose reports they read (--client)")
        if the_role is not Role.CLIENT and client:
            raise AccountError("only a client user belongs to a client")
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        now = self.clock()
        async with self.db.session() as s:
            if await s.scalar(select(User.id).where(User.username == name)) is not None:
                raise AccountError(f"user {name!r} exists")
            await self._phone_free(s, phone, name)
            team_id = await self._team_id(s, team)
            user = User(username=name, display_name=shown, role=the_role.value, team_id=team_id,
                        client=(client or "").strip() or None, locale=locale, password_hash=hashed,
                        password_changed_at=now, created_at=now, created_by=by, phone=phone)
            s.add(user)
            await s.flush()
            await repo.audit(s, at=now, actor=by, action="user.added", subject=f"user:{name}",
                             role=the_role.value, team=team, client=user.client, phone=phone)
            return user

    async def set_phone(self, username: str, phone: str | None, *, by: str) -> None:
        """The SIP endpoint the user works from (None: none); one person per phone."""
        phone = check_phone(phone) if phone else None
        async with self.db.session() as s:
            user = await s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AccountError(f"no user {username!r}")
            await self._phone_free(s, phone, username)
            before, user.phone = user.phone, phone
            await repo.audit(s, at=self.clock(), actor=by, action="user.phone_set", subject=f"user:{username}",
                             phone=phone, before=before)

    async def user_of_phone(self, phone: str) -> User | None:
        async with self.db.session() as s:
            return await s.scalar(select(User).where(User.phone == phone))

    async def _phone_free(self, s: AsyncSession, phone: str | None, username: str) -> None:
        if phone is None:
            return
        holder = await s.scalar(select(User.username).where(User.phone == phone, User.username != username))
        if holder is not None:
            raise AccountError(f"phone {phone} is {holder}'s")

    async def _team_id(self, s: AsyncSession, team: str | None) -> int | None:
        if not team:
            return None
        found = await s.scalar(select(Team.id).where(Team.name == team))
        if found is None:
            raise AccountError(f"no team {team!r} (add it first)")
        return found

    async def user(self, username: str) -> User:
        async with self.db.session() as s:
            return await self._user(s, username)

    async def _user(self, s: AsyncSession, username: str) -> User:
        user = await s.scalar(select(User).where(User.username == check_username(username)))
        if user is None:
            raise AccountError(f"no user {username!r}")
        return user

    async def users(self) -> Sequence[User]:
        async with self.db.session() as s:
            return (await s.scalars(select(User).order_by(User.username))).all()

    async def update_user(self, username: str, *, by: str, role: str | None = None, team: str | None = None,
                          display_name: str | None = None, locale: str | None = None,
                          clear_team: bool = False) -> User:
        """Change a user's role, team, name or language; a new role ends their sessions."""
        async with self.db.session() as s:
            user = await self._user(s, username)
            changes: dict[str, object] = {}
            if role is not None and check_role(role).value != user.role:
                if Role(role) is Role.CLIENT or user.role == Role.CLIENT:
                    raise AccountError("a client account is not turned into a staff account or back: add a new user")
                changes["role"] = user.role = Role(role).value
            if team is not None or clear_team:
                team_id = None if clear_team else await self._team_id(s, team)
                if team_id != user.team_id:
                    changes["team"] = None if clear_team else team
                    user.team_id = team_id
            if display_name is not None:
                changes["display_name"] = user.display_name = check_display_name(display_name)
            if locale is not None:
                changes["locale"] = user.locale = check_locale(locale)
            if changes:
                await repo.audit(s, at=self.clock(), actor=by, action="user.changed", subject=f"user:{user.username}",
                                 **changes)
                if "role" in changes or "team" in changes:
                    await self._end_sessions(s, user.id, "account_changed")
            return user

    async def set_password(self, username: str, password: str, *, by: str) -> None:
        """A new password; every session of the user ends (someone may have had the old one)."""
        name = check_username(username)
        try:
            check_password(password, name)
        except WeakPassword as exc:
            raise AccountError(str(exc)) from None
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        async with self.db.session() as s:
            user = await self._user(s, name)
            user.password_hash, user.password_changed_at = hashed, self.clock()
            await self._end_sessions(s, user.id, "password_changed")
            await repo.audit(s, at=self.clock(), actor=by, action="user.password_set", subject=f"user:{name}")

    async def set_disabled(self, username: str, disabled: bool, *, by: str, why: str) -> None:
        """Disable (sessions end, tokens stop working) or enable a user, with the reason."""
        if not (why or "").strip():
            raise AccountError("a reason is needed")
        async with self.db.session() as s:
            user = await self._user(s, username)
            if disabled and user.username == by:
                raise AccountError("you cannot disable your own account")
            user.disabled_at = self.clock() if disabled else None
            if disabled:
                await self._end_sessions(s, user.id, "disabled")
            await repo.audit(s, at=self.clock(), actor=by, action="user.disabled" if disabled else "user.enabled",
                             subject=f"user:{user.username}", why=why.strip())

    async def _end_sessions(self, s: AsyncSession, user_id: int, reason: str) -> None:
        await s.execute(update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
                        .values(ended_at=self.clock(), ended_reason=reason))

    # -- sign-in ---------------------------------------------------------------------
    async def sign_in(self, username: str, password: str, ip: str) -> SignedIn:
        """A new session for the right password. Whatever session the browser had before is
        not reused (a fresh token every time: no session fixation)."""
        typed = (username or "").strip().lower()[:64]
        ip = (ip or "?")[:64]
        now = self.clock()
        async with self.db.session() as s:
            since = now - self.throttle.window
            by_user = (await s.execute(select(LoginAttempt.at, LoginAttempt.ok).where(
                LoginAttempt.username == typed, LoginAttempt.at >= since))).all()
            by_ip = (await s.execute(select(LoginAttempt.at, LoginAttempt.ok).where(
                LoginAttempt.ip == ip, LoginAttempt.at >= since, LoginAttempt.ok.is_(False)))).all()
            wait = self.throttle.wait([Attempt(a, ok) for a, ok in by_user], [Attempt(a, ok) for a, ok in by_ip], now)
            if wait > timedelta(0):
                raise SignInRefused(f"too many failed sign-ins: try again in {int(wait.total_seconds()) + 1} s",
                                    retry_after=wait)
            user = await s.scalar(select(User).where(User.username == typed)) if USERNAME.fullmatch(typed) else None
        verified = await asyncio.to_thread(self.hasher.verify, user.password_hash if user else None, password or "")
        ok = verified.ok and user is not None and user.disabled_at is None
        async with self.db.session() as s:
            s.add(LoginAttempt(at=now, username=typed, ip=ip, ok=ok))
            if not ok:
                await repo.audit(s, at=now, actor=typed or "?", action="session.refused", subject="sign-in", ip=ip)
        if not ok:
            raise SignInRefused("wrong user name or password, or the account is disabled")
        assert user is not None
        rehash = await asyncio.to_thread(self.hasher.hash, password) if verified.needs_rehash else None
        token = new_token()
        session = UserSession(id=digest(token), user_id=user.id, csrf_token=new_token(), created_at=now,
                              last_seen_at=now, expires_at=now + self.sessions.absolute, ip=ip)
        async with self.db.session() as s:
            s.add(session)
            if rehash:
                await s.execute(update(User).where(User.id == user.id).values(password_hash=rehash))
            await repo.audit(s, at=now, actor=user.username, action="session.started", subject=f"user:{user.username}",
                             ip=ip)
        return SignedIn(_principal(user, "session", session), token)

    async def phone_principal(self, phone: str) -> Principal | None:
        """The user who works from this SIP phone (a call from its keypad), unless disabled."""
        async with self.db.session() as s:
            user = await s.scalar(select(User).where(User.phone == phone))
            return None if user is None or user.disabled_at is not None else _principal(user, "phone")

    async def session_principal(self, token: str | None) -> Principal | None:
        """The user of a live session cookie, else None (and an over session is ended)."""
        if not token or len(token) > 128:
            return None
        now = self.clock()
        async with self.db.session() as s:
            session = await s.get(UserSession, digest(token))
            if session is None or session.ended_at is not None:
                return None
            user = await s.get(User, session.user_id)
            over = self.sessions.ended(session.created_at, session.last_seen_at, now)
            refused = user is None or user.disabled_at is not None or over
            touch = not refused and self.sessions.needs_touch(session.last_seen_at, now)
            principal = None if refused else _principal(user, "session", session)
        # the writes after the read, each on its own: a database too busy to take them does not
        # turn the answer into an error (a refused session stays refused: `over` is computed
        # again on every request)
        if refused:
            await self._write_if_possible(update(UserSession).where(UserSession.id == session.id)
                                          .values(ended_at=now, ended_reason=over or "disabled"))
        elif touch:
            await self._write_if_possible(update(UserSession).where(UserSession.id == session.id)
                                          .values(last_seen_at=now))
        return principal

    async def _write_if_possible(self, statement: Any) -> None:
        try:
            async with self.db.session() as s:
                await s.execute(statement)
        except OperationalError as exc:  # the database is busy: the next request writes it
            log.warning("not written now (database busy): %s", exc.orig)

    async def sign_out(self, principal: Principal) -> None:
        if principal.session_id is None:
            return
        async with self.db.session() as s:
            await s.execute(update(UserSession).where(UserSession.id == principal.session_id,
                                                      UserSession.ended_at.is_(None))
                            .values(ended_at=self.clock(), ended_reason="signed_out"))
            await repo.audit(s, at=self.clock(), actor=principal.username, action="session.ended",
                             subject=f"user:{principal.username}")

    # -- API tokens ------------------------------------------------------------------
    async def issue_token(self, username: str, name: str, *, by: str, days: int | None = None) -> str:
        """A new API token for the user (shown once, never again: only its digest is kept)."""
        label = (name or "").strip()
        if not TEAM_NAME.fullmatch(label):
            raise AccountError("token name: 1-64 printable characters")
        if days is not None and not 1 <= days <= 3650:
            raise AccountError("token lifetime: 1 to 3650 days")
        token = new_api_token()
        now = self.clock()
        async with self.db.session() as s:
            user = await self._user(s, username)
            if user.disabled_at is not None:
                raise AccountError(f"user {user.username!r} is disabled")
            row = ApiToken(user_id=user.id, name=label, digest=digest(token), prefix=token[:10], created_at=now,
                           created_by=by, expires_at=now + timedelta(days=days) if days else None)
            s.add(row)
            await s.flush()
            await repo.audit(s, at=now, actor=by, action="token.issued", subject=f"user:{user.username}",
                             token_id=row.id, name=label, prefix=row.prefix)
        return token

    async def tokens(self, username: str | None = None) -> Sequence[tuple[ApiToken, str]]:
        async with self.db.session() as s:
            query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
            if username:
                query = query.where(User.username == check_username(username))
            return [(t, u) for t, u in (await s.execute(query)).all()]

    async def revoke_token(self, token_id: int, *, by: str) -> None:
        async with self.db.session() as s:
            row = await s.get(ApiToken, token_id)
            if row is None:
                raise AccountError(f"no API token {token_id}")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                await repo.audit(s, at=self.clock(), actor=by, action="token.revoked", subject=f"token:{token_id}")

    async def token_principal(self, token: str | None) -> Principal | None:
        if not token or len(token) > 128:
            return None
        now = self.clock()
        async with self.db.session() as s:
            row = await s.scalar(select(ApiToken).where(ApiToken.digest == digest(token)))
            if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
                return None
            user = await s.get(User, row.user_id)
            if user is None or user.disabled_at is not None:
                return None
            touch = row.last_used_at is None or self.sessions.needs_touch(row.last_used_at, now)
            principal = _principal(user, "token")
        if touch:
            await self._write_if_possible(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        return principal


async def count_users(db: Database) -> int:
    from sqlalchemy import func

    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(User)) or 0)

