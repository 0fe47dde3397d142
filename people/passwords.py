"""Passwords: what a good one is, and argon2id hashes of them (argon2-cffi).

`PasswordHasher` is argon2id with RFC 9106's second recommended profile (t=3, 64 MiB,
p=4) unless told otherwise; `verify` also says when a stored hash was made with weaker
parameters, so it is re-hashed at the next sign-in. A hash of a fixed password is kept to
verify against when the user does not exist: a wrong user name costs as long as a wrong
password, so timing tells no one which accounts exist.
"""
from __future__ import annotations

from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes more, but a megabyte "password" is an attack on the CPU


class WeakPassword(ValueError):
    """The password is refused; the message says why."""


def check_password(password: str, username: str = "") -> str:
    """The password if it is acceptable, else WeakPassword saying what is wrong."""
    if not isinstance(password, str):
        raise WeakPassword("the password must be text")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password may have at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise WeakPassword("the password may not contain the user name")
    if len(set(password)) < 4:
        raise WeakPassword("the password needs at least 4 different characters")
    return password


@dataclass(frozen=True, slots=True)
class Verified:
    ok: bool
    needs_rehash: bool = False


class PasswordHasher:
    def __init__(self, time_cost: int = 3, memory_cost_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib,
                                             parallelism=parallelism, type=argon2.Type.ID)
        self._decoy = self._hasher.hash("not a password of anyone: a decoy")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> Verified:
        """Check `password` against `stored_hash` (None: no such user; the decoy is checked,
        the answer is no). Never raises for a bad password or a damaged hash."""
        if not isinstance(password, str) or len(password) > MAX_LENGTH:
            password = ""
        try:
            self._hasher.verify(stored_hash or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verified(False)
        if stored_hash is None:
            return Verified(False)
        return Verified(True, self._hasher.check_needs_rehash(stored_hash))

