"""Per-attempt tokens: proof that a FastAGI request (or a hang-up record in the spool) comes
from the PBX channel the service originated, not from anyone on the host.

The token of an attempt is HMAC-SHA256(secret, "dunline-call-token-v1\\n" + attempt id),
hex. The service sets it as the channel variable DUNLINE_TOKEN at Originate; the dialplan
passes it on every FastAGI request of that channel (`bind?attempt=..&token=..`) and writes
it into the hang-up record. Only the service holds the secret (a 0600 file, created on
first use), so a local user who knows an attempt id (the console lists them) cannot forge
its token; a token leaked for one attempt is worth nothing for another.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from storage.files import make_dirs

DOMAIN = b"dunline-call-token-v1\n"
TOKEN_HEX = 64


class CallTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the call token secret must be at least 16 bytes")
        self._secret = secret

    def token_for(self, attempt_id: str) -> str:
        return hmac.new(self._secret, DOMAIN + attempt_id.encode(), hashlib.sha256).hexdigest()

    def check(self, attempt_id: str, token: str | None) -> bool:
        """True only for the token of exactly this attempt (constant-time comparison)."""
        if not token or len(token) != TOKEN_HEX:
            return False
        return hmac.compare_digest(self.token_for(attempt_id), token)

    @classmethod
    def load_or_create(cls, path: Path | str) -> CallTokens:
        """The secret from its file, or a new random one written 0600 (a restart keeps it:
        calls placed before the restart still prove themselves)."""
        path = Path(path)
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except FileNotFoundError:
            pass
        make_dirs(path.parent)
        secret = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return cls(bytes.fromhex(path.read_text().strip()))
        with os.fdopen(fd, "w") as handle:
            handle.write(secret.hex() + "\n")
        return cls(secret)
