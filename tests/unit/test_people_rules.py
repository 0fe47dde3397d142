"""The rules of people without I/O: the role matrix (and docs/roles.md, which must say the
same), session expiry, the sign-in throttle, password rules and hashes, number masking."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.scope import mask_id_number, mask_phone
from people.passwords import PasswordHasher, WeakPassword, check_password
from people.roles import MATRIX, Permission, Reach, Role, matrix_markdown, may, reach, sees_unmasked
from people.sessions import Attempt, SessionPolicy, ThrottlePolicy, digest, new_api_token, new_token

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_docs_roles_md_carries_the_matrix_in_code():
    doc = (ROOT / "docs" / "roles.md").read_text(encoding="utf-8")
    assert matrix_markdown() in doc, "regenerate the table: python -c 'from people.roles import matrix_markdown; print(matrix_markdown())'"


def test_every_permission_has_a_row_and_an_unknown_role_may_nothing():
    assert set(MATRIX) == set(Permission)
    for permission in Permission:
        assert not may("root", permission) and not may("", permission) and not may("Admin", permission)
    assert reach("root") is Reach.NONE and not sees_unmasked("root")


def test_the_matrix_keeps_debtor_data_to_those_who_work_cases():
    debtor_data = (Permission.CASE_VIEW, Permission.CASE_VIEW_UNMASKED, Permission.RECORDING_ACCESS,
                   Permission.RECORDING_EXPORT, Permission.BATCH_IMPORT)
    for permission in debtor_data:
        assert not may(Role.ADMIN, permission) and not may(Role.CLIENT, permission), permission
    assert not may(Role.COLLECTOR, Permission.RECORDING_ACCESS)
    assert {r for r in Role if sees_unmasked(r)} == {Role.SUPERVISOR, Role.COMPLIANCE}
    assert {r for r in Role if may(r, Permission.USER_MANAGE)} == {Role.ADMIN}
    assert reach(Role.COLLECTOR) is Reach.OWN and reach(Role.TEAM_LEAD) is Reach.TEAM


def test_a_session_ends_idle_or_at_its_absolute_limit():
    policy = SessionPolicy(idle=timedelta(hours=2), absolute=timedelta(hours=12))
    assert policy.ended(T0, T0, T0 + timedelta(hours=1)) is None
    assert policy.ended(T0, T0, T0 + timedelta(hours=2)) == "idle"
    busy = T0 + timedelta(hours=11, minutes=59)
    assert policy.ended(T0, busy, busy) is None
    assert policy.ended(T0, busy, T0 + timedelta(hours=12)) == "expired"
    assert not policy.needs_touch(T0, T0 + timedelta(seconds=59))
    assert policy.needs_touch(T0, T0 + timedelta(minutes=1))


def failures(n: int, start: datetime = T0, every: timedelta = timedelta(seconds=1)) -> list[Attempt]:
    return [Attempt(start + i * every, ok=False) for i in range(n)]


def test_the_throttle_lets_a_few_mistakes_through_then_doubles_the_wait():
    policy = ThrottlePolicy()
    assert policy.wait(failures(4), [], T0 + timedelta(seconds=4)) == timedelta(0)
    five = failures(5)
    assert policy.wait(five, [], five[-1].at) == timedelta(seconds=30)
    six = failures(6)
    assert policy.wait(six, [], six[-1].at) == timedelta(seconds=60)
    many = failures(40)
    assert policy.wait(many, [], many[-1].at) == policy.max_wait
    assert policy.wait(five, [], five[-1].at + timedelta(seconds=30)) == timedelta(0)


def test_a_success_resets_and_old_failures_fall_out_of_the_window():
    policy = ThrottlePolicy()
    history = [*failures(5), Attempt(T0 + timedelta(seconds=10), ok=True)]
    assert policy.wait(history, [], T0 + timedelta(seconds=11)) == timedelta(0)
    old = failures(9, start=T0 - timedelta(hours=1))
    assert policy.wait(old, [], T0) == timedelta(0)


def test_one_address_guessing_many_names_is_slowed():
    policy = ThrottlePolicy(per_ip_failures=30)
    from_one_address = failures(30)
    assert policy.wait([], from_one_address, from_one_address[-1].at) == policy.max_wait
    assert policy.wait([], from_one_address[:-1], from_one_address[-1].at) == timedelta(0)


@given(st.lists(st.tuples(st.integers(0, 3600), st.booleans()), max_size=60), st.integers(0, 4000))
def test_the_throttle_never_waits_less_after_more_failures(events, now_s):
    policy = ThrottlePolicy()
    attempts = [Attempt(T0 + timedelta(seconds=s), ok) for s, ok in events]
    now = T0 + timedelta(seconds=max([now_s, *[s for s, _ in events]]))
    wait = policy.wait(attempts, attempts, now)
    assert timedelta(0) <= wait <= policy.max_wait
    assert policy.wait([*attempts, Attempt(now, ok=False)], attempts, now) >= wait


@pytest.mark.parametrize("password, why", [
    ("short", "at least 10"), ("x" * 300, "at most"), ("alice-is-great-2026", "user name"),
    ("abababababab", "4 different"),
])
def test_weak_passwords_are_refused_with_the_reason(password, why):
    with pytest.raises(WeakPassword, match=why):
        check_password(password, "alice")


def test_hashes_verify_only_their_password_and_never_raise():
    hasher = PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1)
    stored = hasher.hash("correct horse battery")
    assert "correct horse battery" not in stored and stored.startswith("$argon2id$")
    assert hasher.verify(stored, "correct horse battery").ok
    for wrong in ("correct horse batterY", "", "x" * 10_000, None):
        assert not hasher.verify(stored, wrong).ok
    assert not hasher.verify("not-a-hash", "correct horse battery").ok
    assert not hasher.verify(None, "not a password of anyone: a decoy").ok, "no user: the decoy never lets in"
    stronger = PasswordHasher(time_cost=2, memory_cost_kib=2048, parallelism=1)
    assert stronger.verify(stored, "correct horse battery").needs_rehash


def test_tokens_are_random_and_stored_only_as_digests():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 43 for t in tokens)
    api = new_api_token()
    assert api.startswith("dl_") and digest(api) != api and len(digest(api)) == 64


@pytest.mark.parametrize("number, masked", [
    ("15551100001", "155****0001"), ("+8613800138000", "+86*******8000"), ("12345", "***45"),
])
def test_phone_numbers_are_masked_to_tell_them_apart_only(number, masked):
    assert mask_phone(number) == masked


def test_id_numbers_keep_only_their_ends():
    assert mask_id_number("110101199003071234") == "110***********1234"
    assert mask_id_number("short") == "*****"
