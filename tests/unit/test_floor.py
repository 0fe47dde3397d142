"""The floor's pure rules: which seat takes an answered debtor, and each seat's states."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.floor import Floor, FloorError, SeatState


def _ready(floor: Floor, seat_id: str, collector: str, at: float) -> None:
    floor.open(seat_id, collector, at)
    floor.answered(seat_id, f"PJSIP/{collector}-0001", at)


def test_a_seat_is_ready_once_the_phone_answered_and_only_then_takes_a_call():
    floor = Floor()
    floor.open("seat-a", "6001", 0.0)
    assert floor.reserve("att-1", 1.0) is None, "a phone still ringing takes no debtor"
    floor.answered("seat-a", "PJSIP/6001-0001", 2.0)
    seat = floor.reserve("att-1", 3.0)
    assert seat is not None and (seat.state, seat.attempt_id, seat.channel) == (
        SeatState.RESERVED, "att-1", "PJSIP/6001-0001")
    assert floor.reserve("att-2", 3.0) is None, "one debtor per seat"


def test_the_seat_ready_the_longest_takes_the_next_debtor():
    floor = Floor()
    _ready(floor, "seat-b", "6002", 5.0)
    _ready(floor, "seat-a", "6001", 1.0)
    _ready(floor, "seat-c", "6003", 3.0)
    assert [floor.reserve(f"att-{i}", 10.0).collector for i in range(3)] == ["6001", "6003", "6002"]


def test_a_call_moves_the_seat_through_on_call_and_wrap_up_back_to_ready():
    floor = Floor(wrap_up_s=15.0)
    _ready(floor, "seat-a", "6001", 0.0)
    floor.reserve("att-1", 1.0)
    assert floor.bridged("seat-a", 1.1).state is SeatState.ON_CALL
    assert floor.unbridged("seat-a", 60.0).state is SeatState.WRAP_UP
    assert floor.reserve("att-2", 70.0) is None, "still wrapping up"
    assert floor.reserve("att-2", 75.0).collector == "6001", "ready again after wrap_up_s"


def test_a_collector_may_end_wrap_up_early_or_pause_with_a_code():
    floor = Floor(wrap_up_s=60.0)
    _ready(floor, "seat-a", "6001", 0.0)
    floor.reserve("att-1", 1.0)
    floor.bridged("seat-a", 1.0)
    floor.unbridged("seat-a", 30.0)
    floor.ready("6001", 35.0)
    assert floor.get("seat-a").state is SeatState.READY
    with pytest.raises(FloorError):
        floor.pause("6001", "", 36.0)
    floor.pause("6001", "break", 36.0)
    assert floor.reserve("att-2", 40.0) is None, "a paused collector gets no call"
    assert floor.get("seat-a").pause_code == "break"
    floor.ready("6001", 50.0)
    assert floor.reserve("att-2", 51.0) is not None


def test_pausing_does_not_touch_a_seat_on_a_call():
    floor = Floor()
    _ready(floor, "seat-a", "6001", 0.0)
    floor.reserve("att-1", 1.0)
    floor.bridged("seat-a", 1.0)
    assert floor.pause("6001", "lunch", 2.0) == ()
    assert floor.get("seat-a").state is SeatState.ON_CALL


def test_a_reservation_the_bridge_never_followed_is_released_first_in_line():
    floor = Floor()
    _ready(floor, "seat-a", "6001", 0.0)
    _ready(floor, "seat-b", "6002", 5.0)
    floor.reserve("att-1", 10.0)  # seat-a
    floor.release("seat-a", 10.5)
    assert floor.get("seat-a").state is SeatState.READY and floor.get("seat-a").attempt_id is None
    assert floor.reserve("att-2", 11.0).seat_id == "seat-b", "seat-b has now waited the longest"


def test_a_gone_seat_takes_no_call_and_stale_events_change_nothing():
    floor = Floor()
    _ready(floor, "seat-a", "6001", 0.0)
    assert floor.gone("seat-a").collector == "6001"
    assert floor.reserve("att-1", 1.0) is None
    assert floor.gone("seat-a") is None
    with pytest.raises(FloorError):
        floor.bridged("seat-a", 2.0)
    _ready(floor, "seat-b", "6002", 0.0)
    with pytest.raises(FloorError):
        floor.bridged("seat-b", 2.0)  # entered a bridge without a reservation: refused
    assert floor.get("seat-b").state is SeatState.READY


def test_seat_ids_are_told_apart_from_attempt_ids():
    floor = Floor()
    with pytest.raises(FloorError):
        floor.open("0123456789abcdef0123456789abcdef", "6001", 0.0)
    floor.open("seat-a", "6001", 0.0)
    with pytest.raises(FloorError):
        floor.open("seat-a", "6001", 0.0)


@given(st.lists(st.tuples(st.sampled_from(["reserve", "bridge", "unbridge", "release", "gone", "pause", "ready"]),
                          st.integers(0, 3)), max_size=60))
def test_a_seat_never_holds_two_debtors_whatever_the_order_of_events(ops):
    floor = Floor(wrap_up_s=1.0)
    for i in range(4):
        _ready(floor, f"seat-{i}", f"60{i:02d}", 0.0)
    now = 1.0
    for op, i in ops:
        now += 0.7
        seat_id = f"seat-{i}"
        try:
            if op == "reserve":
                floor.reserve(f"att-{now}", now)
            elif op == "bridge":
                floor.bridged(seat_id, now)
            elif op == "unbridge":
                floor.unbridged(seat_id, now)
            elif op == "release":
                floor.release(seat_id, now)
            elif op == "gone":
                floor.gone(seat_id)
            elif op == "pause":
                floor.pause(f"60{i:02d}", "break", now)
            else:
                floor.ready(f"60{i:02d}", now)
        except FloorError:
            pass
        attempts = [s.attempt_id for s in floor.seats() if s.state in (SeatState.RESERVED, SeatState.ON_CALL)]
        assert len(attempts) == len(set(attempts))
        assert all(s.attempt_id for s in floor.seats() if s.state in (SeatState.RESERVED, SeatState.ON_CALL))
        assert floor.ready_count(now) == sum(1 for s in floor.seats() if floor.is_ready(s, now))
