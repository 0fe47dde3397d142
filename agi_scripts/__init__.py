"""dunline: agi_scripts - our FastAGI server (Asterisk ``AGI(agi://...)``) and its routes.

* :mod:`.protocol` - the AGI wire format, pure (environment, routes, replies, commands).
* :mod:`.server` - :class:`FastAgiServer` and the :class:`AgiSession` handlers receive.
* :mod:`.errors` - the ``AgiError`` family.
"""
from .errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
from .protocol import (AgiReply, AgiRequest, EnvParser, HangupNotice, NeedMore, Reply,
                       ReplyReader, format_command, parse_env, parse_reply, parse_script)
from .server import AgiSession, FastAgiServer, Handler, ServerStats

__all__ = [
    "AgiError", "AgiHangup", "AgiTimeout", "AgiProtocolError", "AgiCommandError",
    "AgiReply", "AgiRequest", "EnvParser", "ReplyReader", "Reply", "HangupNotice", "NeedMore",
    "format_command", "parse_env", "parse_reply", "parse_script",
    "AgiSession", "FastAgiServer", "Handler", "ServerStats",
]
