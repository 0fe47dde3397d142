"""Who is asking, while another process holds the database's write lock: a valid session or
API token is still recognised (the read needs no lock); its "last seen" touch waits for a
later request instead of failing this one (it was a 500 under bench-load's burst); an over
session is still refused."""
from __future__ import annotations

from sqlalchemy import select

from people.roles import Role
from storage.people import ApiToken, UserSession
from tests.console_kit import PASSWORD, cheap_accounts, seed_users, user_of
from tests.tampers import write_locked


async def test_sessions_and_tokens_are_recognised_while_the_database_takes_no_writes(fast_db, clock, tmp_path):
    accounts = cheap_accounts(fast_db, clock)
    await seed_users(accounts)
    name = user_of(Role.SUPERVISOR)
    token = await accounts.issue_token(name, "script", by="test")
    signed = await accounts.sign_in(name, PASSWORD, ip="127.0.0.1")
    clock.advance(accounts.sessions.touch_every.total_seconds() + 1)  # every touch is due
    with write_locked(tmp_path / "d.db"):
        assert (await accounts.token_principal(token)).username == name
        assert (await accounts.session_principal(signed.token)).username == name
    async with fast_db.session() as s:
        assert (await s.scalar(select(ApiToken))).last_used_at is None, "not written while locked"
        seen_before = (await s.scalar(select(UserSession))).last_seen_at
    await accounts.token_principal(token)
    await accounts.session_principal(signed.token)
    async with fast_db.session() as s:
        assert (await s.scalar(select(ApiToken))).last_used_at == clock(), "written by the next request"
        assert (await s.scalar(select(UserSession))).last_seen_at > seen_before


async def test_an_over_session_is_refused_while_the_database_takes_no_writes(fast_db, clock, tmp_path):
    accounts = cheap_accounts(fast_db, clock)
    await seed_users(accounts)
    signed = await accounts.sign_in(user_of(Role.COLLECTOR), PASSWORD, ip="127.0.0.1")
    clock.advance(25 * 3600)  # past any session's life
    with write_locked(tmp_path / "d.db"):
        assert await accounts.session_principal(signed.token) is None
    assert await accounts.session_principal(signed.token) is None
    async with fast_db.session() as s:
        assert (await s.scalar(select(UserSession))).ended_at is not None, "ended once the database took it"
