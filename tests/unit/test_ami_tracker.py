"""CallTracker: pure, no event loop. (What an ended call means for its attempt is the
lifecycle's outcome rule: tests/unit/test_lifecycle.py.)"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ami import (
    BridgeEnter, BridgeLeave, CallTracker, CoreShowChannel, DialBegin, DialEnd, Hangup,
    Newchannel, Newstate, OriginateResponse, UpdateKind, UserEvent, VarSet,
)

UID = "attempt-1"
CH = "PJSIP/carrier-00000001"


def chan(cls, at, state=0, uid=UID, **kw):
    return cls(at=at, channel=CH, uniqueid=uid, linkedid=uid, channel_state=state, **kw)


def run(tracker, *events):
    return [u for e in events for u in tracker.apply(e)]


def kinds(updates):
    return [u.kind.value for u in updates]


def originate_flow(cause, *, answer, dial_status):
    """Events Asterisk 22 sends for an Originate to PJSIP with ChannelId = UID."""
    events = [chan(Newchannel, 1.0),
              DialBegin(at=1.1, dest_channel=CH, dest_uniqueid=UID, dest_linkedid=UID,
                        dest_channel_state=0),
              chan(Newstate, 2.0, state=5)]
    if answer:
        events += [chan(Newstate, 5.0, state=6),
                   DialEnd(at=5.0, dest_channel=CH, dest_uniqueid=UID, dest_channel_state=6,
                           dial_status="ANSWER"),
                   chan(BridgeEnter, 5.5, state=6, bridge_uniqueid="b1"),
                   chan(BridgeLeave, 30.0, state=6, bridge_uniqueid="b1")]
    else:
        events.append(DialEnd(at=9.0, dest_channel=CH, dest_uniqueid=UID,
                              dest_channel_state=5, dial_status=dial_status))
    events.append(chan(Hangup, 31.0, state=6 if answer else 5, cause=cause, cause_txt="x"))
    return events


def test_answered_bridged_hangup_16():
    tracker = CallTracker()
    updates = run(tracker, *originate_flow(16, answer=True, dial_status="ANSWER"))
    assert kinds(updates) == ["created", "ringing", "answered", "dial_end", "bridged",
                              "unbridged", "ended"]
    final = updates[-1].call
    assert (final.state, final.created_at, final.answered_at, final.bridged_at,
            final.unbridged_at, final.ended_at) == ("ended", 1.0, 5.0, 5.5, 30.0, 31.0)
    assert (final.hangup_cause, final.dial_status, final.answered) == (16, "ANSWER", True)
    assert updates[0].call.state == "down" and updates[1].call.state == "ringing"
    assert len(tracker) == 0 and tracker.get(UID) is None and tracker.has_ended(UID)


@pytest.mark.parametrize("cause,dial_status", [
    (17, "BUSY"), (19, "NOANSWER"), (34, "CONGESTION"), (1, "CHANUNAVAIL"),
])
def test_unanswered_flows(cause, dial_status):
    updates = run(CallTracker(), *originate_flow(cause, answer=False, dial_status=dial_status))
    final = updates[-1]
    assert final.kind is UpdateKind.ENDED and final.call.answered_at is None
    assert (final.call.hangup_cause, final.call.dial_status) == (cause, dial_status)
    assert not final.call.answered


def test_varset_and_ignored_events():
    tracker = CallTracker(tracked_vars={"AMD_STATUS"})
    run(tracker, chan(Newchannel, 1))
    assert kinds(run(tracker, chan(VarSet, 2, variable="AMD_STATUS", value="HUMAN"))) == ["var_set"]
    assert run(tracker, chan(VarSet, 2, variable="OTHER", value="x")) == []
    assert run(tracker, UserEvent(at=3, userevent="x"),
               OriginateResponse(at=3, action_id="a", uniqueid=UID, response="Success")) == []
    assert tracker.get(UID).vars == {"AMD_STATUS": "HUMAN"}


def test_late_events_never_resurrect_an_ended_call():
    tracker = CallTracker()
    run(tracker, chan(Newchannel, 1), chan(Hangup, 2, cause=16))
    assert run(tracker, chan(Newstate, 3, state=6), chan(Hangup, 3, cause=16),
               chan(VarSet, 3, variable="A", value="1")) == []


def test_newstate_never_moves_backwards():
    tracker = CallTracker()
    run(tracker, chan(Newchannel, 1, state=6))
    assert run(tracker, chan(Newstate, 2, state=5), chan(Newstate, 2, state=0)) == []
    assert tracker.get(UID).state == "up" and tracker.get(UID).answered_at == 1


def test_accept_filter():
    tracker = CallTracker(accept=lambda uid: uid.startswith("attempt-"))
    assert run(tracker, chan(Newchannel, 1, uid="1732000000.12")) == []
    assert kinds(run(tracker, chan(Newchannel, 1))) == ["created"]


def listed(uid, state=6, duration=10, bridge=""):
    return CoreShowChannel(at=100.0, channel=f"PJSIP/c-{uid}", uniqueid=uid, linkedid=uid,
                           channel_state=state, duration=duration, bridge_id=bridge)


def test_resync_ends_missing_calls_and_adds_new_ones():
    tracker = CallTracker()
    run(tracker, chan(Newchannel, 1, uid="gone"), chan(Newchannel, 1, uid="kept", state=5))
    updates = tracker.resync([listed("kept", state=6), listed("new", duration=42, bridge="b7")],
                             at=100.0)
    by = {(u.call.uniqueid, u.kind.value): u.call for u in updates}
    assert set(by) == {("kept", "answered"), ("new", "created"), ("new", "answered"),
                       ("new", "bridged"), ("gone", "ended")}
    gone = by[("gone", "ended")]
    assert gone.ended_by_resync and gone.hangup_cause is None and gone.ended_at == 100.0
    assert not gone.answered
    new = tracker.get("new")
    assert (new.created_at, new.answered_at, new.bridged_at) == (58.0, 100.0, 100.0)
    assert set(tracker.calls) == {"kept", "new"}
    assert run(tracker, chan(Hangup, 101, uid="gone", cause=16)) == []  # late, ignored
    assert tracker.resync([], at=200.0)[0].call.ended_by_resync


def test_resync_of_unchanged_call_reports_nothing():
    tracker = CallTracker()
    run(tracker, chan(Newchannel, 1, state=6))
    assert tracker.resync([listed(UID, state=6)], at=5.0) == []


def test_tombstones_are_bounded():
    tracker = CallTracker(tombstones=3)
    for n in range(10):
        run(tracker, chan(Newchannel, n, uid=f"u{n}"), chan(Hangup, n, uid=f"u{n}"))
    assert len(tracker) == 0 and len(tracker._ended) == 3


UIDS = st.sampled_from(["a", "b", "c"])
AT = st.floats(min_value=0, max_value=1e6, allow_nan=False)
STATE = st.sampled_from([-1, 0, 4, 5, 6, 7, 10])
EVENTS = st.one_of(
    st.builds(Newchannel, at=AT, uniqueid=UIDS, channel_state=STATE),
    st.builds(Newstate, at=AT, uniqueid=UIDS, channel_state=STATE),
    st.builds(Hangup, at=AT, uniqueid=UIDS, channel_state=STATE,
              cause=st.integers(min_value=-1, max_value=130)),
    st.builds(BridgeEnter, at=AT, uniqueid=UIDS), st.builds(BridgeLeave, at=AT, uniqueid=UIDS),
    st.builds(VarSet, at=AT, uniqueid=UIDS, variable=st.sampled_from(["", "A", "B"])),
    st.builds(DialBegin, at=AT, uniqueid=UIDS | st.just(""), dest_uniqueid=UIDS,
              dest_channel_state=STATE),
    st.builds(DialEnd, at=AT, uniqueid=UIDS | st.just(""), dest_uniqueid=UIDS,
              dial_status=st.sampled_from(["ANSWER", "BUSY"])),
    st.builds(OriginateResponse, at=AT, uniqueid=UIDS),
    st.lists(st.builds(CoreShowChannel, at=AT, uniqueid=UIDS, channel_state=STATE,
                       duration=st.integers(0, 100)), max_size=3),
)


@settings(max_examples=200)
@given(st.lists(EVENTS, max_size=40))
def test_any_sequence_never_raises_and_never_unends(events):
    tracker = CallTracker()
    ended: set[str] = set()
    for event in events:
        updates = (tracker.resync(event, at=1.0) if isinstance(event, list)
                   else tracker.apply(event))
        for update in updates:
            uid = update.call.uniqueid
            assert uid not in ended, "an ended call came back"
            if update.call.state == "ended":
                ended.add(uid)
                assert update.kind is UpdateKind.ENDED and update.call.ended_at is not None
            if update.kind is UpdateKind.ANSWERED:
                assert update.call.answered_at is not None
        assert not ended & set(tracker.calls)


def test_the_call_keeps_when_the_pbx_made_it_by_the_pbxs_clock():
    tracker = CallTracker()
    run(tracker, Newchannel(at=1.0, channel=CH, uniqueid=UID, linkedid=UID, channel_state=0, pbx_at=1796286630.5),
        Newstate(at=2.0, channel=CH, uniqueid=UID, linkedid=UID, channel_state=6, pbx_at=1796286632.0))
    assert tracker.get(UID).pbx_created_at == 1796286630.5, "the first event's time, not a later one's"
    listed = CoreShowChannel(at=100.0, channel="PJSIP/c-x", uniqueid="x", linkedid="x", channel_state=6,
                             duration=42, pbx_at=1796286700.0)
    tracker.resync([listed], at=100.0)
    assert tracker.get("x").pbx_created_at == 1796286658.0, "from a listing: its time less its duration"
