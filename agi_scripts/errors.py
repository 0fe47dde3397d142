"""Errors of the FastAGI package (``agi_scripts``).

Every failure of an AGI conversation reaches a handler as one of these classes; no
asyncio stream error (``IncompleteReadError``, ``LimitOverrunError``, ``ConnectionResetError``)
leaks out of the server. Whose fault it is:

* :class:`AgiHangup` - nobody's: the call ended (HANGUP line, 511, or the socket closed).
  A handler may simply let it propagate; the server logs it as a normal end.
* :class:`AgiTimeout` - the PBX did not answer a command in time.
* :class:`AgiProtocolError` - the PBX side sent something that is not AGI.
* :class:`AgiCommandError` - Asterisk refused our command (510, 520, other codes, EXEC of
  an unknown application): our fault, or a dialplan/config problem.

Bad arguments on our side (a newline in an argument, a command too long for Asterisk's
2 KiB buffer) are programming errors and raise plain ``ValueError``/``TypeError``.
"""
from __future__ import annotations


class AgiError(Exception):
    """Base class of every error of an AGI conversation."""


class AgiHangup(AgiError):
    """The channel is gone: Asterisk sent ``HANGUP``, answered 511 (dead channel), or
    closed the connection. No further command can be sent on this session."""


class AgiTimeout(AgiError):
    """No reply to a command (or no room to write it) within the allotted time."""


class AgiProtocolError(AgiError):
    """The PBX side broke the protocol: garbled or oversize environment, an overlong line,
    a reply that is not AGI, or a reply when no command was pending."""


class AgiCommandError(AgiError):
    """Asterisk answered a command with an error.

    ``code`` is the AGI status (510 invalid command, 520 usage error, ...; 200 when the
    command itself ran but reported failure, e.g. EXEC of an unknown application) and
    ``text`` the full reply text (for 520 the whole multi-line usage).
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"AGI error {code}: {text}")
        self.code = code
        self.text = text


__all__ = ["AgiError", "AgiHangup", "AgiTimeout", "AgiProtocolError", "AgiCommandError"]
