"""The FastAGI protocol without I/O: bytes in, typed values and events out.

The conversation, as Asterisk (res_agi) speaks it over one TCP connection:

1. Asterisk sends the environment: ``agi_name: value`` lines ended by a blank line
   (:class:`EnvParser`); ``agi_network_script`` carries our route and query
   (:meth:`AgiRequest.from_env`).
2. We send one command line (:func:`format_command`); Asterisk answers with one reply:
   ``200 result=1 (data) endpos=5``, ``510 ...``, ``511 ...`` (dead channel), or a
   multi-line ``520-...`` / ``520 End of proper usage.`` block.
3. When the channel hangs up, Asterisk writes an unsolicited ``HANGUP`` line between
   replies. It is not a reply: :class:`ReplyReader` reports it as :class:`HangupNotice`
   and still matches every later reply to the command it answers, in order.

Nothing here touches a socket, the clock or the event loop.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote

from .errors import AgiCommandError, AgiHangup, AgiProtocolError

MAX_LINE_BYTES = 8192  # longest line accepted from the PBX (without its line ending)
MAX_ENV_LINES = 256  # res_agi sends ~25 names plus at most 127 agi_arg_N
MAX_ENV_BYTES = 65536
MAX_BLOCK_LINES = 512  # longest multi-line (520) reply
MAX_COMMAND_BYTES = 2047  # res_agi reads a command into char[2048]; longer ones are split
MAX_COMMAND_WORDS = 127  # res_agi MAX_ARGS (128) including the terminating NULL
# res_agi ends the AGI with AGISTATUS=FAILURE when a line starting with "failure" comes in
# instead of a command; closing without it leaves AGISTATUS=SUCCESS.
FAILURE_LINE = b"FAILURE\n"

_EMPTY: Mapping[str, str] = MappingProxyType({})
_ENV_NAME = re.compile(r"agi_[A-Za-z0-9_]{1,64}")
_SEGMENT = re.compile(r"[a-z0-9_-]{1,64}")
_REPLY = re.compile(r"(\d{3})(?:([ -])(.*))?", re.S)
_RESULT = re.compile(r"result=(\S*)")
_INT = re.compile(r"-?\d{1,18}")
_WORD = re.compile(r"\S+")
_KV = re.compile(r"([^\s=()]+)=(\S*)")
_COMMAND_NAME = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")


def decode_line(line: bytes) -> str:
    """One line from the PBX as text: strip ``\\n`` / ``\\r\\n``, enforce the length limit,
    decode UTF-8 (invalid bytes become U+FFFD)."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) > MAX_LINE_BYTES:
        raise AgiProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
    if b"\n" in line:
        raise AgiProtocolError("several lines fed as one")
    return line.decode("utf-8", "replace")


# --- environment ---------------------------------------------------------------------

class EnvParser:
    """Collects the environment block, one line at a time.

    ``feed_line`` returns ``None`` while more lines are needed and the read-only mapping
    once the blank line arrives. Garbage, duplicates and oversize blocks raise
    :class:`AgiProtocolError`.
    """

    def __init__(self, *, max_lines: int = MAX_ENV_LINES, max_bytes: int = MAX_ENV_BYTES) -> None:
        self._env: dict[str, str] = {}
        self._lines = 0
        self._bytes = 0
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._done: Mapping[str, str] | None = None

    def feed_line(self, line: bytes) -> Mapping[str, str] | None:
        if self._done is not None:
            return self._done
        self._lines += 1
        self._bytes += len(line)
        if self._lines > self._max_lines or self._bytes > self._max_bytes:
            raise AgiProtocolError(f"AGI environment larger than {self._max_lines} lines/{self._max_bytes} bytes")
        text = decode_line(line)
        if text == "":
            if not self._env:
                raise AgiProtocolError("empty AGI environment")
            self._done = MappingProxyType(self._env)
            return self._done
        name, sep, value = text.partition(":")
        if not sep or not _ENV_NAME.fullmatch(name):
            raise AgiProtocolError(f"not an AGI environment line: {text[:80]!r}")
        if name in self._env:
            raise AgiProtocolError(f"duplicate AGI environment name {name!r}")
        self._env[name] = value[1:] if value.startswith(" ") else value
        return None


def parse_env(data: bytes) -> Mapping[str, str]:
    """Parse a complete environment block (must end with the blank line, nothing after)."""
    parser = EnvParser()
    *lines, rest = data.split(b"\n")
    for i, line in enumerate(lines):
        env = parser.feed_line(line)
        if env is not None:
            if i != len(lines) - 1 or rest:
                raise AgiProtocolError("data after the AGI environment")
            return env
    raise AgiProtocolError("AGI environment not terminated by a blank line")


# --- request (route and query) ----------------------------------------------------------

def is_valid_route(route: str) -> bool:
    """A route is ``""`` or ``/``-joined segments of ``[a-z0-9_-]``."""
    return route == "" or all(_SEGMENT.fullmatch(s) for s in route.split("/"))


def _unquote(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise AgiProtocolError(f"invalid percent-encoding in {text[:80]!r}") from None


def parse_script(script: str) -> tuple[str, Mapping[str, str]]:
    """``bind?attempt=abc&x=1`` -> ``("bind", {"attempt": "abc", "x": "1"})``.

    The path is percent-decoded and lower-cased; empty and ``.`` segments are dropped;
    ``..`` or a character outside ``[a-z0-9_-]`` is an error. The query is split on
    ``&``, percent-decoded (``+`` stays ``+``: phone numbers); a duplicate or empty key is
    an error (a value smuggled in by the dialplan must not override another).
    """
    path, _, qs = script.partition("?")
    segments = []
    for raw in path.split("/"):
        segment = _unquote(raw).lower()
        if segment in ("", "."):
            continue
        if not _SEGMENT.fullmatch(segment):
            raise AgiProtocolError(f"invalid AGI route {path[:80]!r}")
        segments.append(segment)
    query: dict[str, str] = {}
    for part in qs.split("&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        key = _unquote(raw_key)
        if not key:
            raise AgiProtocolError(f"empty key in AGI query {qs[:80]!r}")
        if key in query:
            raise AgiProtocolError(f"duplicate key {key!r} in AGI query")
        query[key] = _unquote(raw_value)
    return "/".join(segments), MappingProxyType(query)


def _script_of(env: Mapping[str, str]) -> str:
    """The part of the AGI URL after the host: ``agi_network_script``, else derived from
    ``agi_request`` (``agi://host:port/bind?x=1``); ``""`` when there is none."""
    if "agi_network_script" in env:
        return env["agi_network_script"]
    request = env.get("agi_request", "")
    scheme, sep, rest = request.partition("://")
    if not sep or scheme.lower() not in ("agi", "hagi"):
        return ""
    return rest.partition("/")[2]


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """What Asterisk asked for: the environment, the route, its query and AGI() args."""

    env: Mapping[str, str]
    route: str
    query: Mapping[str, str]
    args: tuple[str, ...] = ()

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AgiRequest:
        route, query = parse_script(_script_of(env))
        args = []
        while (value := env.get(f"agi_arg_{len(args) + 1}")) is not None:
            args.append(value)
        return cls(MappingProxyType(dict(env)), route, query, tuple(args))


# --- replies ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AgiReply:
    """One reply. ``text`` is everything after the code (all lines of a multi-line reply,
    joined by ``\\n``). ``result`` is the integer ``result=`` value (None when absent or
    not an integer, e.g. GET DATA's ``result= (timeout)``; ``result_text`` keeps it raw),
    ``data`` the parenthesised part, ``extras`` the trailing ``key=value`` pairs."""

    code: int
    text: str
    result: int | None = None
    result_text: str | None = None
    data: str | None = None
    extras: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


def _data_end(body: str) -> int:
    """Index of the ``)`` closing the data: the rightmost one followed only by ``key=value``
    words (GET VARIABLE values may contain ``)``), else the last one."""
    kv_after = True
    for word in reversed(list(_WORD.finditer(body))):
        if kv_after and word.group().endswith(")"):
            return word.end() - 1
        kv_after = kv_after and _KV.fullmatch(word.group()) is not None
        if not kv_after:
            break
    end = body.rfind(")")
    if end < 0:
        raise AgiProtocolError(f"unterminated data in AGI reply: {body[:80]!r}")
    return end


def parse_reply(code: int, text: str) -> AgiReply:
    """Build an :class:`AgiReply` from its code and text (``result=1 (x) endpos=3``)."""
    m = _RESULT.match(text)
    if m is None:
        return AgiReply(code, text)
    raw = m.group(1)
    result = int(raw) if _INT.fullmatch(raw) else None
    tail = text[m.end():]
    data = None
    if tail.startswith(" ("):
        body = tail[2:]
        end = _data_end(body)
        data, tail = body[:end], body[end + 1:]
    extras = {k: v for k, v in _KV.findall(tail)}
    return AgiReply(code, text, result, raw, data, MappingProxyType(extras) if extras else _EMPTY)


def raise_for_reply(reply: AgiReply) -> AgiReply:
    """Return a 200 reply; raise AgiHangup for 511, AgiCommandError for any other code."""
    if reply.code == 200:
        return reply
    if reply.code == 511:
        raise AgiHangup(f"command refused on a dead channel: {reply.text}")
    raise AgiCommandError(reply.code, reply.text)


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete reply, with the tag given to :meth:`ReplyReader.expect` for its command."""

    reply: AgiReply
    tag: object = None


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """Asterisk's unsolicited ``HANGUP`` line: the channel has hung up."""


@dataclass(frozen=True, slots=True)
class NeedMore:
    """The line was consumed (part of a multi-line reply); nothing to report yet."""


ReaderEvent = Reply | HangupNotice | NeedMore


class ReplyReader:
    """Turns the PBX's lines (after the environment) into events, one line at a time.

    Every command sent is announced with :meth:`expect` (optionally tagged); replies are
    matched to commands first-in first-out, so a reply to a command whose caller gave up
    (timeout, hang-up) still lands on that command's tag and never on the next one.
    ``hung_up`` becomes True on a ``HANGUP`` line or a 511 reply; ``expect`` then raises
    :class:`AgiHangup`.
    """

    def __init__(self, *, max_block_lines: int = MAX_BLOCK_LINES) -> None:
        self.hung_up = False
        self._pending: deque[object] = deque()
        self._block_code: str | None = None
        self._block: list[str] = []
        self._max_block_lines = max_block_lines

    @property
    def pending(self) -> int:
        """Number of commands sent and not yet answered."""
        return len(self._pending)

    def expect(self, tag: object = None) -> None:
        """Announce that a command is being sent; its reply will carry ``tag``."""
        if self.hung_up:
            raise AgiHangup("the channel has hung up")
        self._pending.append(tag)

    def feed_line(self, line: bytes) -> ReaderEvent:
        text = decode_line(line)
        if self._block_code is not None:
            return self._feed_block(text)
        if text.rstrip() == "HANGUP":
            self.hung_up = True
            return HangupNotice()
        m = _REPLY.fullmatch(text)
        if m is None:
            raise AgiProtocolError(f"not an AGI reply: {text[:80]!r}")
        if m.group(2) == "-":
            self._block_code, self._block = m.group(1), [m.group(3)]
            return NeedMore()
        return self._complete(int(m.group(1)), m.group(3) or "")

    def _feed_block(self, text: str) -> ReaderEvent:
        code = self._block_code
        assert code is not None
        if len(self._block) >= self._max_block_lines:
            raise AgiProtocolError(f"multi-line AGI reply longer than {self._max_block_lines} lines")
        if text == code or text.startswith(code + " "):
            last = text[4:]
        elif text.endswith(f"{code} End of proper usage."):
            # Usage text without a final newline: the end marker is glued to it.
            cut = len(text) - len(f"{code} End of proper usage.")
            self._block.append(text[:cut])
            last = "End of proper usage."
        else:
            self._block.append(text)
            return NeedMore()
        full = "\n".join([*self._block, last])
        self._block_code, self._block = None, []
        return self._complete(int(code), full)

    def _complete(self, code: int, text: str) -> ReaderEvent:
        if not self._pending:
            raise AgiProtocolError(f"AGI reply with no command pending: {code} {text[:80]!r}")
        reply = parse_reply(code, text)
        tag = self._pending.popleft()
        if code == 511:
            self.hung_up = True
        return Reply(reply, tag)


# --- commands -------------------------------------------------------------------------------

def format_command(name: str, *args: str | int) -> bytes:
    """One command line, e.g. ``format_command("GET VARIABLE", "X")`` ->
    ``b'GET VARIABLE "X"\\n'``.

    String arguments are always double-quoted with ``\\`` and ``"`` backslash-escaped (the
    quoting res_agi's parser undoes); integers are written bare. A CR, LF or NUL in an
    argument (command injection), a malformed name, too many words or a line longer than
    Asterisk's buffer raise ``ValueError``; other argument types raise ``TypeError``.
    """
    if not _COMMAND_NAME.fullmatch(name):
        raise ValueError(f"invalid AGI command name {name!r}")
    words = [name.upper()]
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, (str, int)):
            raise TypeError(f"AGI arguments are str or int, not {type(arg).__name__}")
        if isinstance(arg, int):
            words.append(str(arg))
            continue
        if "\n" in arg or "\r" in arg or "\0" in arg:
            raise ValueError(f"CR, LF or NUL in AGI argument {arg[:40]!r}")
        words.append('"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"')
    if len(name.split()) + len(args) > MAX_COMMAND_WORDS:
        raise ValueError(f"more than {MAX_COMMAND_WORDS} words in an AGI command")
    line = (" ".join(words) + "\n").encode("utf-8")
    if len(line) > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
    return line
