"""The pure FastAGI protocol: environment, routes, replies, the reply reader, commands.

No sockets, no event loop: lines in, values and events out.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi_scripts.errors import AgiCommandError, AgiHangup, AgiProtocolError
from agi_scripts.protocol import (MAX_COMMAND_BYTES, MAX_LINE_BYTES, AgiRequest, EnvParser,
                                  HangupNotice, NeedMore, Reply, ReplyReader, format_command,
                                  is_valid_route, parse_env, parse_reply, parse_script,
                                  raise_for_reply)

ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: bind?attempt=abc&x=1\n"
    b"agi_request: agi://127.0.0.1:4573/bind?attempt=abc&x=1\n"
    b"agi_channel: PJSIP/carrier-00000001\n"
    b"agi_uniqueid: 1733000000.17\n"
    b"agi_calleridname: Foo: Bar\n"
    b"agi_accountcode: \n"
    b"agi_arg_1: first\n"
    b"agi_arg_2: second, with comma\n"
    b"\n"
)


# --- environment ----------------------------------------------------------------------

def test_env_parses_asterisk_block():
    env = parse_env(ENV)
    assert env["agi_network_script"] == "bind?attempt=abc&x=1"
    assert env["agi_calleridname"] == "Foo: Bar"  # split on the first colon only
    assert env["agi_accountcode"] == ""
    with pytest.raises(TypeError):
        env["agi_channel"] = "x"  # type: ignore[index]  # read-only


def test_env_tolerates_crlf():
    assert parse_env(ENV.replace(b"\n", b"\r\n")) == parse_env(ENV)


def test_env_parser_needs_more_until_blank_line():
    parser = EnvParser()
    lines = ENV.split(b"\n")[:-1]
    for line in lines[:-1]:
        assert parser.feed_line(line + b"\n") is None
    env = parser.feed_line(b"\n")
    assert env is not None and env["agi_uniqueid"] == "1733000000.17"
    assert parser.feed_line(b"garbage after completion\n") is env


@pytest.mark.parametrize("data, message", [
    (ENV[:-1], "not terminated"),  # missing blank line
    (b"agi_network: yes\n", "not terminated"),
    (b"\n", "empty"),
    (b"", "not terminated"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not an AGI"),
    (b"Host: example\n\n", "not an AGI"),
    (b"agi_network yes\n\n", "not an AGI"),
    (b"agi_: x\n\n", "not an AGI"),
    (b"agi_na me: x\n\n", "not an AGI"),
    (b"agi_a: 1\nagi_a: 2\n\n", "duplicate"),
    (ENV + b"200 result=1\n", "after"),
    (b"".join(b"agi_n%d: v\n" % i for i in range(300)) + b"\n", "larger"),
    (b"".join(b"agi_n%d: %s\n" % (i, b"v" * 4000) for i in range(20)) + b"\n", "larger"),
    (b"agi_x: " + b"v" * (MAX_LINE_BYTES + 1) + b"\n\n", "longer"),
])
def test_env_rejects_garbage_and_oversize(data, message):
    with pytest.raises(AgiProtocolError, match=message):
        parse_env(data)


def test_env_invalid_utf8_is_replaced_not_fatal():
    env = parse_env(b"agi_calleridname: Jos\xe9\n\n")
    assert env["agi_calleridname"] == "Jos\ufffd"


# --- route and query ----------------------------------------------------------------------

@pytest.mark.parametrize("script, route, query", [
    ("bind?attempt=abc&x=1", "bind", {"attempt": "abc", "x": "1"}),
    ("bind", "bind", {}),
    ("/bind/", "bind", {}),
    ("//bind//./", "bind", {}),
    ("BIND?Attempt=X", "bind", {"Attempt": "X"}),
    ("b%69nd", "bind", {}),
    ("calls/ended?attempt=1", "calls/ended", {"attempt": "1"}),
    ("", "", {}),
    ("?x=1", "", {"x": "1"}),
    ("bind?", "bind", {}),
    ("bind?a=%41%20b&n=+15551234", "bind", {"a": "A b", "n": "+15551234"}),
    ("bind?a=x%3Dy%26z", "bind", {"a": "x=y&z"}),
    ("bind?a=1=2", "bind", {"a": "1=2"}),
    ("bind?flag&&b=", "bind", {"flag": "", "b": ""}),
    ("bind?name=Jos%C3%A9", "bind", {"name": "José"}),
    ("my_route-2", "my_route-2", {}),
])
def test_parse_script(script, route, query):
    assert parse_script(script) == (route, query)


@pytest.mark.parametrize("script", [
    "../bind", "bind/..", "bi nd", "bind;x", "b%2Fnd", "bïnd", "bind.agi", "a" * 65,
    "bind?a=1&a=2", "bind?=x", "bind?a=%ff", "%ff",
])
def test_parse_script_rejects(script):
    with pytest.raises(AgiProtocolError):
        parse_script(script)


def test_request_from_env():
    request = AgiRequest.from_env(parse_env(ENV))
    assert (request.route, dict(request.query)) == ("bind", {"attempt": "abc", "x": "1"})
    assert request.args == ("first", "second, with comma")
    assert request.channel == "PJSIP/carrier-00000001" and request.uniqueid == "1733000000.17"


@pytest.mark.parametrize("request_url, route, query", [
    ("agi://127.0.0.1:4573/bind?attempt=1", "bind", {"attempt": "1"}),
    ("AGI://host/ended", "ended", {}),
    ("agi://host", "", {}),
    ("/var/lib/asterisk/agi-bin/x.agi", "", {}),
])
def test_request_route_from_agi_request_when_no_network_script(request_url, route, query):
    request = AgiRequest.from_env({"agi_request": request_url})
    assert (request.route, dict(request.query)) == (route, query)


def test_route_names():
    assert is_valid_route("bind") and is_valid_route("calls/ended") and is_valid_route("")
    assert not is_valid_route("Bind") and not is_valid_route("/bind") and not is_valid_route("b d")


# --- replies --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, result, data, extras", [
    ("result=1", 1, None, {}),
    ("result=-1", -1, None, {}),
    ("result=0 endpos=1234", 0, None, {"endpos": "1234"}),
    ("result=1 (value)", 1, "value", {}),
    ("result=1 ()", 1, "", {}),
    ("result=1 (a value with spaces )", 1, "a value with spaces ", {}),
    ("result=1 (has (parens) x=1)", 1, "has (parens) x=1", {}),
    ("result=1 (x) a=b)", 1, "x) a=b", {}),
    ("result=1 (digit) digit=5 endpos=800", 1, "digit", {"digit": "5", "endpos": "800"}),
    ("result= (timeout)", None, "timeout", {}),
    ("result=0012", 12, None, {}),
    ("result=*1", None, None, {}),
])
def test_parse_reply(text, result, data, extras):
    reply = parse_reply(200, text)
    assert (reply.code, reply.result, reply.data, dict(reply.extras)) == (200, result, data, extras)
    assert reply.text == text


def test_parse_reply_keeps_raw_result():
    assert parse_reply(200, "result=0012").result_text == "0012"
    assert parse_reply(510, "Invalid or unknown command").result is None


def test_parse_reply_unterminated_data():
    with pytest.raises(AgiProtocolError, match="unterminated"):
        parse_reply(200, "result=1 (abc")


def feed(reader: ReplyReader, *lines: str):
    return [reader.feed_line(line.encode() + b"\n") for line in lines]


def test_reader_single_replies_match_commands_in_order():
    reader = ReplyReader()
    reader.expect("a")
    reader.expect("b")
    first, second = feed(reader, "200 result=1 (x)", "510 Invalid or unknown command")
    assert isinstance(first, Reply) and first.tag == "a" and first.reply.data == "x"
    assert isinstance(second, Reply) and second.tag == "b" and second.reply.code == 510
    assert reader.pending == 0


def test_reader_crlf_and_bare_code():
    reader = ReplyReader()
    reader.expect()
    event = reader.feed_line(b"200\r\n")
    assert isinstance(event, Reply) and event.reply.code == 200 and event.reply.result is None


def test_reader_hangup_before_reply_is_not_the_reply():
    reader = ReplyReader()
    reader.expect("exec")
    assert feed(reader, "HANGUP") == [HangupNotice()]
    assert reader.hung_up and reader.pending == 1
    late = reader.feed_line(b"200 result=-1\n")  # the reply to the command still lands on it
    assert isinstance(late, Reply) and late.tag == "exec"
    with pytest.raises(AgiHangup):
        reader.expect("next")
    assert feed(reader, "HANGUP\r") == [HangupNotice()]  # repeated at the end: harmless


def test_reader_hangup_between_replies():
    reader = ReplyReader()
    reader.expect("a")
    events = feed(reader, "200 result=1", "HANGUP")
    assert isinstance(events[0], Reply) and events[1] == HangupNotice()


def test_reader_511_marks_dead():
    reader = ReplyReader()
    reader.expect("x")
    (event,) = feed(reader, "511 Command Not Permitted on a dead channel or intercept routine")
    assert isinstance(event, Reply) and event.reply.code == 511 and reader.hung_up
    with pytest.raises(AgiHangup):
        raise_for_reply(event.reply)
    with pytest.raises(AgiHangup):
        reader.expect()


USAGE = [
    "520-Invalid command syntax.  Proper usage follows:",
    " Usage: GET VARIABLE <variablename>",
    "\tDoes not work with global variables. Returns 0 if not set, 1 if set (value).",
    "200 result=1 (this line is usage text, not a reply)",
    "HANGUP",
    "",
    "520 End of proper usage.",
]


def test_reader_520_block_is_consumed_completely():
    reader = ReplyReader()
    reader.expect("bad")
    reader.expect("good")
    events = feed(reader, *USAGE, "200 result=1 (v)")
    assert events[:6] == [NeedMore()] * 6
    usage, good = events[6], events[7]
    assert isinstance(usage, Reply) and usage.tag == "bad" and usage.reply.code == 520
    assert "Usage: GET VARIABLE" in usage.reply.text and usage.reply.text.endswith("End of proper usage.")
    assert len(usage.reply.text.split("\n")) == 7
    assert isinstance(good, Reply) and good.tag == "good" and good.reply.data == "v"
    assert not reader.hung_up
    with pytest.raises(AgiCommandError) as info:
        raise_for_reply(usage.reply)
    assert info.value.code == 520 and "GET VARIABLE" in info.value.text


def test_reader_520_end_marker_glued_to_usage_without_newline():
    reader = ReplyReader()
    reader.expect("bad")
    events = feed(reader, USAGE[0], " Usage: EXEC <app> <options>520 End of proper usage.")
    assert isinstance(events[1], Reply) and " Usage: EXEC <app> <options>" in events[1].reply.text


def test_reader_520_single_line():
    reader = ReplyReader()
    reader.expect()
    (event,) = feed(reader, "520 Invalid command syntax.  Proper usage not available.")
    assert isinstance(event, Reply) and event.reply.code == 520


def test_reader_block_too_long():
    reader = ReplyReader(max_block_lines=5)
    reader.expect()
    with pytest.raises(AgiProtocolError, match="longer"):
        feed(reader, "520-start", *["usage"] * 10)


@pytest.mark.parametrize("line", ["hello", "20 result=1", "2000 result=1", "200result=1", "hangup"])
def test_reader_rejects_garbage(line):
    reader = ReplyReader()
    reader.expect()
    with pytest.raises(AgiProtocolError):
        feed(reader, line)


def test_reader_rejects_unsolicited_reply_and_overlong_line():
    with pytest.raises(AgiProtocolError, match="no command pending"):
        feed(ReplyReader(), "200 result=1")
    reader = ReplyReader()
    reader.expect()
    with pytest.raises(AgiProtocolError, match="longer"):
        reader.feed_line(b"200 result=1 (" + b"x" * MAX_LINE_BYTES + b")\n")


def test_raise_for_reply_codes():
    assert raise_for_reply(parse_reply(200, "result=1")).result == 1
    with pytest.raises(AgiCommandError) as info:
        raise_for_reply(parse_reply(510, "Invalid or unknown command"))
    assert info.value.code == 510
    with pytest.raises(AgiCommandError):
        raise_for_reply(parse_reply(503, "result=-2 Memory allocation failure"))


# --- commands -------------------------------------------------------------------------------

def asterisk_parse_args(line: str) -> list[str]:
    """Re-statement of res_agi's parse_args() (quotes group, backslash escapes one char)."""
    argv: list[str] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                argv.append("")
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            argv.append("")
            whitespace = False
        argv[-1] += ch
        escaped = False
    return argv


@pytest.mark.parametrize("name, args, expected", [
    ("GET VARIABLE", ("X",), b'GET VARIABLE "X"\n'),
    ("get variable", ("CDR(userfield)",), b'GET VARIABLE "CDR(userfield)"\n'),
    ("SET VARIABLE", ("X", 'say "hi" \\o/'), b'SET VARIABLE "X" "say \\"hi\\" \\\\o/"\n'),
    ("VERBOSE", ("", 1), b'VERBOSE "" 1\n'),
    ("HANGUP", (), b"HANGUP\n"),
    ("EXEC", ("MixMonitor", "/r/a.wav,b"), b'EXEC "MixMonitor" "/r/a.wav,b"\n'),
])
def test_format_command(name, args, expected):
    line = format_command(name, *args)
    assert line == expected
    assert asterisk_parse_args(line.decode()[:-1]) == [*name.upper().split(), *map(str, args)]


@pytest.mark.parametrize("arg", ["a\nHANGUP", "a\r", "a\0b", "\n"])
def test_format_command_rejects_injection(arg):
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        format_command("SET VARIABLE", "X", arg)


@pytest.mark.parametrize("name", ["", "GET\nVARIABLE", "GET  VARIABLE", "X;Y", "GET VARIABLE \"X\"", " HANGUP", "EXEC 1"])
def test_format_command_rejects_bad_names(name):
    with pytest.raises(ValueError):
        format_command(name)


@pytest.mark.parametrize("arg", [None, 1.5, True, b"bytes"])
def test_format_command_rejects_other_types(arg):
    with pytest.raises(TypeError):
        format_command("VERBOSE", arg)  # type: ignore[arg-type]


def test_format_command_limits():
    assert len(format_command("VERBOSE", "x" * (MAX_COMMAND_BYTES - 11))) == MAX_COMMAND_BYTES
    with pytest.raises(ValueError, match="longer"):
        format_command("VERBOSE", "x" * (MAX_COMMAND_BYTES - 10))
    with pytest.raises(ValueError, match="longer"):
        format_command("VERBOSE", "é" * 1100)  # counted in UTF-8 bytes
    with pytest.raises(ValueError, match="words"):
        format_command("EXEC", *["a"] * 127)


_ARG = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), max_size=40)


@given(st.lists(_ARG, max_size=8))
def test_format_command_round_trips_through_asterisk_quoting(args):
    line = format_command("SET VARIABLE", *args).decode("utf-8")
    assert line.endswith("\n") and line.count("\n") == 1
    assert asterisk_parse_args(line[:-1]) == ["SET", "VARIABLE", *args]


# --- never anything but AgiProtocolError on garbage ------------------------------------------

@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_env_parser_random_bytes(data):
    parser = EnvParser(max_lines=20, max_bytes=400)
    try:
        for line in data.split(b"\n"):
            if parser.feed_line(line + b"\n") is not None:
                AgiRequest.from_env(parser.feed_line(b"\n") or {})
                break
    except AgiProtocolError:
        pass


_LINES = st.lists(st.one_of(
    st.binary(max_size=60),
    st.sampled_from([b"HANGUP", b"520-x", b"520 End of proper usage.", b"200 result=1 (a) b=c",
                     b"511 dead", b"200 result=1 (", b"200-", b"510"]),
), max_size=30)


@settings(max_examples=300)
@given(_LINES)
def test_reply_reader_random_lines(lines):
    reader = ReplyReader(max_block_lines=10)
    for _ in range(40):
        reader.expect()
    try:
        for line in lines:
            event = reader.feed_line(line + b"\n")
            assert isinstance(event, (Reply, HangupNotice, NeedMore))
            if isinstance(event, Reply):
                try:
                    raise_for_reply(event.reply)
                except (AgiHangup, AgiCommandError):
                    pass
    except AgiProtocolError:
        pass


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_parse_script_and_reply_random_text(text):
    for parse in (parse_script, lambda t: parse_reply(200, t), lambda t: parse_reply(200, "result=1 " + t)):
        try:
            parse(text)
        except AgiProtocolError:
            pass
