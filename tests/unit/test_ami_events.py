"""parse_event and AmiParser: pure, no event loop."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ami import (
    AmiParser, AmiProtocolError, BridgeEnter, ContactStatus, CoreShowChannel, DialBegin, DialEnd, FullyBooted,
    Hangup, Newchannel, Newstate, OriginateResponse, Shutdown, UnknownEvent, UserEvent, VarSet,
    parse_event,
)

CHAN = {"Channel": "PJSIP/carrier-0000002a", "ChannelState": "5", "ChannelStateDesc": "Ringing",
        "CallerIDNum": "0611223344", "Context": "dunline-out", "Exten": "s", "Priority": "1",
        "Uniqueid": "attempt-7", "Linkedid": "attempt-7", "Language": "en", "AccountCode": ""}


def test_newchannel_and_newstate():
    event = parse_event({"Event": "Newchannel", "Privilege": "call,all", **CHAN}, 12.5)
    assert isinstance(event, Newchannel)
    assert (event.uniqueid, event.linkedid, event.channel) == (
        "attempt-7", "attempt-7", "PJSIP/carrier-0000002a")
    assert (event.channel_state, event.channel_state_desc, event.at) == (5, "Ringing", 12.5)
    assert (event.caller_id_num, event.context, event.exten) == ("0611223344", "dunline-out", "s")
    up = parse_event({"Event": "Newstate", **CHAN, "ChannelState": "6"}, 13.0)
    assert isinstance(up, Newstate) and up.channel_state == 6


def test_hangup_cause_and_garbage_cause():
    ok = parse_event({"Event": "Hangup", **CHAN, "Cause": "17", "Cause-txt": "User busy"}, 1)
    assert isinstance(ok, Hangup) and (ok.cause, ok.cause_txt) == (17, "User busy")
    bad = parse_event({"Event": "Hangup", **CHAN, "Cause": "busy!"}, 1)
    assert isinstance(bad, Hangup) and bad.cause == 0
    missing = parse_event({"Event": "Hangup", **CHAN}, 1)
    assert isinstance(missing, Hangup) and missing.cause == 0


def test_dial_events_from_originate_have_no_caller():
    headers = {"Event": "DialEnd", "DestChannel": "PJSIP/carrier-1", "DestUniqueid": "att-1",
               "DestLinkedid": "att-1", "DestChannelState": "5", "DialStatus": "BUSY"}
    event = parse_event(headers, 2)
    assert isinstance(event, DialEnd) and not isinstance(event, DialBegin)
    assert (event.uniqueid, event.dest_uniqueid, event.dial_status) == ("", "att-1", "BUSY")
    begin = parse_event({**headers, "Event": "DialBegin", "DialString": "0611@carrier"}, 2)
    assert isinstance(begin, DialBegin) and begin.dial_string == "0611@carrier"
    assert isinstance(parse_event({"Event": "DialEnd", "DialStatus": "BUSY"}, 2), UnknownEvent)


def test_bridge_varset_userevent():
    bridge = parse_event({"Event": "BridgeEnter", **CHAN, "BridgeUniqueid": "b-1",
                          "BridgeNumChannels": "2"}, 3)
    assert isinstance(bridge, BridgeEnter) and bridge.bridge_uniqueid == "b-1"
    assert bridge.bridge_num_channels == 2
    var = parse_event({"Event": "VarSet", **CHAN, "Variable": "AMD_STATUS", "Value": "HUMAN"}, 3)
    assert isinstance(var, VarSet) and (var.variable, var.value) == ("AMD_STATUS", "HUMAN")
    user = parse_event({"Event": "UserEvent", "UserEvent": "Consent", "Answer": "yes"}, 3)
    assert isinstance(user, UserEvent) and user.userevent == "Consent"
    assert user.headers["Answer"] == "yes" and user.uniqueid == ""


def test_originate_response_null_uniqueid():
    event = parse_event({"Event": "OriginateResponse", "ActionID": "action/x/1/3",
                         "Response": "Failure", "Channel": "PJSIP/0611@carrier",
                         "Reason": "0", "Uniqueid": "<null>"}, 4)
    assert isinstance(event, OriginateResponse)
    assert (event.action_id, event.response, event.reason, event.uniqueid) == (
        "action/x/1/3", "Failure", 0, "")


def test_core_show_channel_and_system_events():
    chan = parse_event({"Event": "CoreShowChannel", "ActionID": "a", **CHAN,
                        "Extension": "s", "Duration": "01:02:03", "BridgeId": "b-9"}, 5)
    assert isinstance(chan, CoreShowChannel)
    assert (chan.duration, chan.bridge_id, chan.exten) == (3723, "b-9", "s")
    assert parse_event({"Event": "CoreShowChannel", **CHAN, "Duration": "x:1"}, 5).duration == 0
    assert isinstance(parse_event({"Event": "FullyBooted", "Status": "Fully Booted"}, 5),
                      FullyBooted)
    down = parse_event({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "True"}, 5)
    assert isinstance(down, Shutdown) and down.restart and down.shutdown == "Cleanly"


def test_header_names_are_case_insensitive():
    event = parse_event({"event": "hangup", "UNIQUEID": "u1", "cause": " 16 "}, 0)
    assert isinstance(event, Hangup) and (event.uniqueid, event.cause) == ("u1", 16)


@pytest.mark.parametrize("headers", [
    {}, {"Event": ""}, {"Response": "Success"}, {"Event": "Newchannel"},
    {"Event": "Hangup", "Channel": "x"}, {"Event": "PeerStatus", "Peer": "PJSIP/x"},
    {"Event": "Newstate", "Uniqueid": "u", "ChannelState": "Up"},
    {"Event": "Hangup", "Uniqueid": "u", "Cause": "9" * 5000},
    {"Event": None, 3: "x", "Uniqueid": b"u"},  # type: ignore[dict-item]
])
def test_garbage_never_raises(headers):
    event = parse_event(headers, 0.0)
    assert event.at == 0.0


@given(st.dictionaries(st.sampled_from(
    ["Event", "Uniqueid", "Cause", "ChannelState", "Duration", "Reason", "DestUniqueid",
     "BridgeNumChannels", "Restart", "x"]) | st.text(max_size=8), st.text(max_size=12)),
    st.sampled_from(["Hangup", "Newstate", "DialEnd", "CoreShowChannel", "OriginateResponse",
                     "Shutdown", "BridgeLeave", "Nope"]))
def test_fuzz_parse_event_never_raises(headers, name):
    parse_event({**headers, "Event": name}, 1.0)
    parse_event(headers, 1.0)


# -- AmiParser -----------------------------------------------------------------------

def test_parser_banner_and_messages():
    parser = AmiParser()
    out = parser.feed(b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\n"
                      b"ActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
                      b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\nEvent: Par")
    assert parser.banner == "9.0.0"
    assert out == [{"Response": "Success", "ActionID": "1", "Message": "Authentication accepted"},
                   {"Event": "FullyBooted", "Status": "Fully Booted"}]
    assert parser.feed(b"tial\r\n\r\n") == [{"Event": "Partial"}]


def test_parser_split_utf8_byte_by_byte():
    data = "Event: UserEvent\r\nName: Zoë 日本\r\n\r\n".encode()
    parser = AmiParser()
    out = [m for i in range(len(data)) for m in parser.feed(data[i:i + 1])]
    assert out == [{"Event": "UserEvent", "Name": "Zoë 日本"}]


def test_parser_invalid_utf8_is_replaced_not_fatal():
    assert AmiParser().feed(b"Event: X\r\nName: a\xff\r\n\r\n") == [{"Event": "X", "Name": "a\ufffd"}]


def test_parser_lines_without_colon_and_values_with_colons():
    out = AmiParser().feed(b"Response: Follows\r\nPrivilege: Command\r\nsome raw output\r\n"
                           b"--END COMMAND--\r\nOutput: a: b\r\nOutput: c\r\n: novalue\r\n\r\n")
    assert out == [{"Response": "Follows", "Privilege": "Command", "Output": "a: b\nc"}]


def test_parser_tolerates_bare_newlines_and_blank_runs():
    assert AmiParser().feed(b"\r\n\r\nEvent: A\n\nEvent: B\r\n\r\n\r\n") == [
        {"Event": "A"}, {"Event": "B"}]


def test_parser_endless_line_is_an_error():
    parser = AmiParser(max_line=1000)
    parser.feed(b"Event: " + b"x" * 900)
    with pytest.raises(AmiProtocolError):
        parser.feed(b"x" * 200)


def test_parser_endless_message_is_an_error():
    parser = AmiParser(max_line=100, max_message=1000)
    with pytest.raises(AmiProtocolError):
        for n in range(200):
            parser.feed(f"H{n}: value\r\n".encode())


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_fuzz_parser_never_crashes_on_random_bytes(data, step):
    parser = AmiParser()
    for i in range(0, len(data), step):
        for message in parser.feed(data[i:i + step]):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in message.items())


@pytest.mark.parametrize("stamp, expected", [("1796286630.384228", 1796286630.384228), ("", None), ("soon", None),
                                             ("-5", None), ("1e300", None)])
def test_the_pbxs_own_timestamp_is_kept_when_sane(stamp, expected):
    event = parse_event({"Event": "Newchannel", "Uniqueid": "u1", "Timestamp": stamp}, at=1.0)
    assert event.pbx_at == expected and event.at == 1.0


def test_contact_status_tells_a_lost_phone():
    removed = parse_event({"Event": "ContactStatus", "URI": "sip:6001@127.0.0.1:7001", "ContactStatus": "Removed",
                           "AOR": "6001", "EndpointName": "6001"}, 1.0)
    assert isinstance(removed, ContactStatus) and (removed.aor, removed.endpoint, removed.lost) == ("6001", "6001", True)
    assert parse_event({"Event": "ContactStatus", "ContactStatus": "Unreachable", "AOR": "6002"}, 1.0).lost
    assert not parse_event({"Event": "ContactStatus", "ContactStatus": "Reachable", "AOR": "6002"}, 1.0).lost
    garbage = parse_event({"Event": "ContactStatus"}, 1.0)
    assert isinstance(garbage, ContactStatus) and not garbage.lost and garbage.aor == ""
