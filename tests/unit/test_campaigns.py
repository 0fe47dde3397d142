"""Campaigns' pure rules (dialer/campaigns.py: a campaign's definition and its checks, its
status moves, which phone of a case it tries next, its pacer) and how the shared floor is
split between running campaigns (dialer/campaign_pacing.py over a real dialer.floor.Floor)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import pytest

from dialer.campaign_pacing import (MAX_LINES_PER_TICK, PRIOR_ANSWER_RATE, InFlight, Running, answer_rate,
                                    floor_snapshot, plan_tick)
from dialer.campaigns import (DEFAULT_PHONE_ORDER, DEFAULT_RETRY_SPACING_S, MAX_RETRY_SPACING_S, CampaignError,
                              CampaignSpec, Mode, Selection, Status, move, next_phone, pacer_for, phones_in_order,
                              spec_from)
from dialer.floor import Floor
from dialer.pacing.pacer import Progressive
from dialer.pacing.predictive import Predictive
from dialer.pacing.snapshot import DEFAULT_TARGET_ABANDON_RATE, CallCounts, Snapshot

FULL = {
    "name": "autumn-cards_2.0",
    "mode": "predictive",
    "client": "cu",
    "selection": {"batches": [3, 1, 3], "teams": [2], "collectors": [7, 5],
                  "min_amount_cents": 10_000, "max_amount_cents": 500_000,
                  "min_overdue_days": 30, "max_overdue_days": 180,
                  "segments": ["card", "loan", "card"], "regions": ["north"]},
    "phone_order": ["work", "own", "third_party"],
    "retry_spacing_s": 7200,
    "caller_ids": ["4008001000", "+864008002000"],
    "amd": True,
    "target_abandon_rate": 0.02,
}


def body(**changes):
    """A minimal valid campaign with `changes` (a value of ... removes the field)."""
    out = {"name": "c1", "mode": "progressive", **changes}
    return {k: v for k, v in out.items() if v is not ...}


# -- spec_from -----------------------------------------------------------------------------

def test_a_full_valid_campaign_is_taken_field_by_field():
    spec = spec_from(FULL)
    assert spec == CampaignSpec(
        name="autumn-cards_2.0", mode=Mode.PREDICTIVE, client="cu",
        selection=Selection(batches=(1, 3), teams=(2,), collectors=(5, 7), min_amount_cents=10_000,
                            max_amount_cents=500_000, min_overdue_days=30, max_overdue_days=180,
                            segments=("card", "loan"), regions=("north",)),
        phone_order=("work", "own", "third_party"), retry_spacing_s=7200,
        caller_ids=("4008001000", "+864008002000"), amd=True, target_abandon_rate=0.02)
    assert spec.selection.to_json() == {
        "batches": [1, 3], "teams": [2], "collectors": [5, 7], "min_amount_cents": 10_000,
        "max_amount_cents": 500_000, "min_overdue_days": 30, "max_overdue_days": 180,
        "segments": ["card", "loan"], "regions": ["north"]}


def test_a_campaign_of_a_name_and_a_mode_takes_the_defaults():
    spec = spec_from({"name": "c1", "mode": "preview"})
    assert spec == CampaignSpec(name="c1", mode=Mode.PREVIEW)
    assert (spec.client, spec.selection, spec.phone_order, spec.retry_spacing_s, spec.caller_ids, spec.amd,
            spec.target_abandon_rate) == (None, Selection(), DEFAULT_PHONE_ORDER, DEFAULT_RETRY_SPACING_S, (),
                                          False, DEFAULT_TARGET_ABANDON_RATE)
    assert "third_party" not in spec.phone_order, "third parties only when a campaign asks for them"
    assert spec.selection.to_json() == {}
    assert spec_from(body(selection=None)).selection == Selection()


@pytest.mark.parametrize("changes", [
    {"target_abandon_rate": 0}, {"target_abandon_rate": 0.0}, {"target_abandon_rate": 0.03},
    {"retry_spacing_s": 1}, {"retry_spacing_s": MAX_RETRY_SPACING_S},
    {"name": "a"}, {"name": "9" + "x" * 63},
    {"selection": {"min_amount_cents": 5, "max_amount_cents": 5}},
    {"selection": {"min_overdue_days": 0, "max_overdue_days": 0}},
    {"phone_order": ["third_party"]},
    {"amd": False}, {"client": "cu"},
])
def test_values_at_the_edges_are_taken(changes):
    spec_from(body(**changes))


def test_the_target_is_a_float_even_when_given_as_a_whole_number():
    target = spec_from(body(target_abandon_rate=0)).target_abandon_rate
    assert target == 0.0 and type(target) is float


@pytest.mark.parametrize("bad, field", [
    (body(colour="red"), "unknown field(s) colour"),
    (body(colour="red", size=3), "unknown field(s) colour, size"),
    (body(name=...), "name:"),
    (body(name=""), "name:"),
    (body(name="-leading-dash"), "name:"),
    (body(name="has space"), "name:"),
    (body(name="x" * 65), "name:"),
    (body(name="naïve"), "name:"),
    (body(name=7), "name:"),
    (body(mode=...), "mode:"),
    (body(mode="robocall"), "mode:"),
    (body(mode="Progressive"), "mode:"),
    (body(mode=None), "mode:"),
    (body(client=""), "client:"),
    (body(client=3), "client:"),
    (body(client="x" * 65), "client:"),
    (body(target_abandon_rate=0.031), "target_abandon_rate:"),
    (body(target_abandon_rate=0.5), "target_abandon_rate:"),
    (body(target_abandon_rate=-0.001), "target_abandon_rate:"),
    (body(target_abandon_rate=math.nan), "target_abandon_rate:"),
    (body(target_abandon_rate=math.inf), "target_abandon_rate:"),
    (body(target_abandon_rate=True), "target_abandon_rate:"),
    (body(target_abandon_rate=False), "target_abandon_rate:"),
    (body(target_abandon_rate="0.01"), "target_abandon_rate:"),
    (body(target_abandon_rate=None), "target_abandon_rate:"),
    (body(phone_order=["own", "cousin"]), "phone_order:"),
    (body(phone_order=[]), "phone_order:"),
    (body(phone_order="own"), "phone_order:"),
    (body(phone_order=[""]), "phone_order:"),
    (body(phone_order=None), "phone_order:"),
    (body(retry_spacing_s=0), "retry_spacing_s:"),
    (body(retry_spacing_s=-60), "retry_spacing_s:"),
    (body(retry_spacing_s=60.0), "retry_spacing_s:"),
    (body(retry_spacing_s=1.5), "retry_spacing_s:"),
    (body(retry_spacing_s=True), "retry_spacing_s:"),
    (body(retry_spacing_s="60"), "retry_spacing_s:"),
    (body(retry_spacing_s=MAX_RETRY_SPACING_S + 1), "retry_spacing_s:"),
    (body(caller_ids=["not-a-number"]), "caller_ids:"),
    (body(caller_ids="4008001000"), "caller_ids:"),
    (body(caller_ids=["12"]), "caller_ids:"),
    (body(amd="yes"), "amd:"),
    (body(amd=1), "amd:"),
    (body(selection=[]), "selection: an object"),
    (body(selection="everything"), "selection: an object"),
    (body(selection={"colour": "red"}), "selection: unknown field(s) colour"),
    (body(selection={"batches": [-1]}), "selection.batches:"),
    (body(selection={"batches": [0]}), "selection.batches:"),
    (body(selection={"teams": [True]}), "selection.teams:"),
    (body(selection={"collectors": ["5"]}), "selection.collectors:"),
    (body(selection={"collectors": 5}), "selection.collectors:"),
    (body(selection={"batches": list(range(1, 202))}), "selection.batches:"),
    (body(selection={"min_amount_cents": -1}), "selection.min_amount_cents:"),
    (body(selection={"max_amount_cents": 1.5}), "selection.max_amount_cents:"),
    (body(selection={"min_overdue_days": True}), "selection.min_overdue_days:"),
    (body(selection={"max_overdue_days": 36501}), "selection.max_overdue_days:"),
    (body(selection={"segments": [""]}), "selection.segments:"),
    (body(selection={"regions": ["x" * 65]}), "selection.regions:"),
    (body(selection={"min_amount_cents": 2, "max_amount_cents": 1}),
     "selection: min_amount_cents is above max_amount_cents"),
    (body(selection={"min_overdue_days": 90, "max_overdue_days": 30}),
     "selection: min_overdue_days is above max_overdue_days"),
])
def test_a_bad_campaign_is_refused_with_a_message_naming_the_field(bad, field):
    with pytest.raises(CampaignError) as refused:
        spec_from(bad)
    assert field in str(refused.value)


@pytest.mark.parametrize("bad", [None, [], "c1", 3])
def test_a_campaign_is_a_json_object(bad):
    with pytest.raises(CampaignError, match="a campaign is a JSON object"):
        spec_from(bad)


# -- status moves --------------------------------------------------------------------------

ALLOWED = {
    ("draft", "start"): Status.RUNNING, ("draft", "stop"): Status.STOPPED,
    ("running", "pause"): Status.PAUSED, ("running", "stop"): Status.STOPPED,
    ("paused", "start"): Status.RUNNING, ("paused", "stop"): Status.STOPPED,
}
EVERY_MOVE = [(status.value, verb) for status in Status for verb in ("start", "pause", "stop")]


@pytest.mark.parametrize("current, verb", [m for m in EVERY_MOVE if m in ALLOWED])
def test_an_allowed_move_leads_where_it_says(current, verb):
    assert move(current, verb) is ALLOWED[(current, verb)]


@pytest.mark.parametrize("current, verb", [m for m in EVERY_MOVE if m not in ALLOWED])
def test_a_refused_move_says_why(current, verb):
    with pytest.raises(CampaignError, match=f"a {current} campaign cannot {verb}"):
        move(current, verb)


def test_stopped_is_final():
    for verb in ("start", "pause", "stop"):
        with pytest.raises(CampaignError):
            move("stopped", verb)


def test_an_unknown_action_is_refused_naming_the_actions():
    with pytest.raises(CampaignError, match="no such action 'resume': one of start, pause, stop"):
        move("paused", "resume")


# -- which phone ---------------------------------------------------------------------------

@dataclass
class P:
    id: int
    relation: str | None = "own"
    kind: str = "debtor"
    do_not_call: bool = False
    refused: bool = False
    retired_at: datetime | None = None

    @property
    def number(self) -> str:
        return f"1555110{self.id:04d}"


def ids(phones) -> list[int]:
    return [p.id for p in phones]


def test_phones_in_order_follow_the_order_then_the_order_they_were_added_in():
    phones = [P(5, "work"), P(2, "family"), P(4, "own"), P(1, "own"), P(3, "work")]
    assert ids(phones_in_order(phones, ("own", "work", "family"))) == [1, 4, 3, 5, 2]
    assert ids(phones_in_order(phones, ("family", "work"))) == [2, 3, 5], "a relation not listed is not tried"


def test_a_do_not_call_refused_or_retired_phone_is_never_tried():
    phones = [P(1, do_not_call=True), P(2, "third_party", refused=True), P(3, retired_at=datetime(2026, 1, 1)),
              P(4, "work")]
    assert ids(phones_in_order(phones, ("own", "work", "family", "third_party"))) == [4]
    assert next_phone(phones[:3], ("own", "third_party"), {}) is None


def test_a_phone_from_before_relations_were_kept_counts_as_own_or_third_party_by_its_kind():
    phones = [P(1, None, kind="third_party"), P(2, None, kind="debtor"), P(3, "nonsense", kind="debtor")]
    assert ids(phones_in_order(phones, ("own",))) == [2, 3]
    assert ids(phones_in_order(phones, ("third_party",))) == [1]


def test_next_phone_prefers_a_phone_never_tried_in_order():
    phones = [P(1, "work"), P(2, "own"), P(3, "own")]
    order = ("own", "work")
    assert next_phone(phones, order, {}).id == 2
    assert next_phone(phones, order, {2: 10}).id == 3
    assert next_phone(phones, order, {2: 10, 3: 5}).id == 1, "an untried phone beats any tried one"


def test_once_every_phone_was_tried_the_one_tried_longest_ago_is_next():
    phones = [P(1, "work"), P(2, "own"), P(3, "own")]
    order = ("own", "work")
    assert next_phone(phones, order, {1: 30, 2: 20, 3: 10}).id == 3
    assert next_phone(phones, order, {1: 5, 2: 20, 3: 10}).id == 1
    assert next_phone(phones, order, {1: 7, 2: 7, 3: 7}).id == 2, "a tie goes to the order"
    # a phone tried but no longer usable is not a candidate, however long ago it was tried
    phones[2].do_not_call = True
    assert next_phone(phones, order, {1: 30, 2: 20, 3: 1}).id == 2


def test_next_phone_of_a_case_with_no_phone_in_the_order_is_none():
    assert next_phone([P(1, "family")], ("own", "work"), {}) is None
    assert next_phone([], ("own",), {}) is None


# -- pacers --------------------------------------------------------------------------------

def test_each_mode_has_its_pacer_and_preview_none():
    assert pacer_for("preview") is None and pacer_for(Mode.PREVIEW) is None
    assert isinstance(pacer_for("progressive"), Progressive) and isinstance(pacer_for(Mode.PROGRESSIVE), Progressive)
    assert isinstance(pacer_for("predictive"), Predictive)
    assert pacer_for("progressive") is not pacer_for("progressive"), "each campaign its own pacer (pacers learn)"
    with pytest.raises(ValueError):
        pacer_for("robocall")


# -- the floor, split between campaigns ----------------------------------------------------

def ready_floor(n: int, at: float = 0.0, wrap_up_s: float = 0.0) -> Floor:
    floor = Floor(wrap_up_s=wrap_up_s)
    for i in range(n):
        floor.open(f"seat-{i:03d}", f"6{i:03d}", at)
        floor.answered(f"seat-{i:03d}", f"PJSIP/6{i:03d}-01", at)
    return floor


def running(campaign_id: int, pacer=None, window: CallCounts = CallCounts(), target: float = 0.03) -> Running:
    return Running(campaign_id, pacer or Progressive(), window, target)


def test_the_answer_rate_starts_at_the_prior_and_moves_to_what_the_campaign_measured():
    assert answer_rate(CallCounts()) == pytest.approx(PRIOR_ANSWER_RATE)
    assert answer_rate(CallCounts(placed=10, answered=10)) == pytest.approx((10 + 6) / 30)
    assert answer_rate(CallCounts(placed=10, answered=0)) == pytest.approx(6 / 30)
    assert answer_rate(CallCounts(placed=100_000, answered=50_000)) == pytest.approx(0.5, abs=1e-3)


def test_floor_snapshot_puts_each_seat_in_its_state_with_the_seconds_spent_in_it():
    floor = Floor(wrap_up_s=30.0)
    for seat, phone in (("seat-a", "6001"), ("seat-b", "6002"), ("seat-c", "6003"), ("seat-d", "6004"),
                        ("seat-e", "6005"), ("seat-f", "6006"), ("seat-g", "6007")):
        floor.open(seat, phone, 0.0)
    for seat, phone in (("seat-c", "6003"), ("seat-d", "6004"), ("seat-e", "6005"), ("seat-f", "6006"),
                        ("seat-g", "6007")):
        floor.answered(seat, f"PJSIP/{phone}-01", 0.0)
    floor.answered("seat-a", "PJSIP/6001-01", 10.0)  # ready since 10
    # seat-b: still ringing the collector's phone (connecting)
    floor.reserve("att-d", 20.0, prefer="6004")
    floor.bridged("seat-d", 21.0)  # on a call since 21
    for seat, phone in (("seat-e", "6005"), ("seat-f", "6006")):
        floor.reserve(f"att-{seat}", 30.0, prefer=phone)
        floor.bridged(seat, 30.0)
    floor.unbridged("seat-f", 50.0)  # wrap-up since 50: over (30 s) by 100, so ready
    floor.pause("6007", "lunch", 60.0)  # paused since 60
    floor.unbridged("seat-e", 80.0)  # wrap-up since 80: still wrapping up at 100
    floor.reserve("att-c", 95.0, prefer="6003")  # reserved since 95
    calls = [InFlight(1, since=90.0), InFlight(1, since=97.0, answered=True), InFlight(2, since=99.0),
             InFlight(2, since=100.5)]
    window = CallCounts(placed=40, answered=20, abandoned=1)

    snap = floor_snapshot(floor, floor.seats(), 100.0, calls, running(1, window=window, target=0.02))

    assert sorted(snap.ready) == [50.0, 90.0]
    assert (snap.reserved, snap.on_call, snap.wrap_up, snap.paused) == ((5.0,), (79.0,), (20.0,), (40.0,))
    assert snap.working == 5, "the connecting seat is not on the floor yet"
    assert sorted(snap.ringing) == [0.0, 1.0, 10.0], "every campaign's calls; one dialled 'later' counts 0 s"
    assert snap.waiting == (3.0,)
    assert (snap.now, snap.window, snap.target_abandon_rate) == (100.0, window, 0.02)
    assert snap.observed.answer_rate == pytest.approx(answer_rate(window))


def test_a_seat_with_no_channel_yet_is_left_out():
    floor = Floor()
    floor.open("seat-a", "6001", 0.0)
    snap = floor_snapshot(floor, floor.seats(), 5.0, (), running(1))
    assert snap == Snapshot(now=5.0, observed=snap.observed, target_abandon_rate=0.03)


def test_two_campaigns_never_both_dial_for_the_same_ready_collector():
    floor = ready_floor(4)
    plan = plan_tick(floor, floor.seats(), 10.0, (), [running(7), running(3)])
    assert plan == {3: 4}, "the first campaign by id takes the four ready collectors; the other none"
    assert sum(plan.values()) == floor.ready_count(10.0)


def test_calls_in_flight_of_any_campaign_cover_ready_collectors():
    floor = ready_floor(4)
    calls = (InFlight(7, since=5.0), InFlight(3, since=8.0, answered=True))
    assert plan_tick(floor, floor.seats(), 10.0, calls, [running(3), running(7)]) == {3: 2}
    four = tuple(InFlight(7, since=5.0) for _ in range(4))
    assert plan_tick(floor, floor.seats(), 10.0, four, [running(3), running(7)]) == {}


class Asks:
    """A pacer that asks for a fixed number of lines and keeps every snapshot it was shown."""

    name = "fixed"

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.seen: list[Snapshot] = []

    def lines_to_dial(self, snapshot: Snapshot) -> int:
        self.seen.append(snapshot)
        return self.lines


def test_each_campaign_is_asked_in_id_order_seeing_the_lines_granted_before_it_as_ringing():
    floor = ready_floor(2)
    first, second = Asks(3), Asks(2)
    plan = plan_tick(floor, floor.seats(), 10.0, (InFlight(9, since=4.0),), [running(2, second), running(1, first)])
    assert plan == {1: 3, 2: 2}
    assert first.seen[0].ringing == (6.0,)
    assert sorted(second.seen[0].ringing) == [0.0, 0.0, 0.0, 6.0]


def test_a_tick_places_at_most_max_lines_however_large_the_floor():
    floor = ready_floor(MAX_LINES_PER_TICK + 20)
    assert plan_tick(floor, floor.seats(), 1.0, (), [running(1)]) == {1: MAX_LINES_PER_TICK}
    plan = plan_tick(floor, floor.seats(), 1.0, (), [running(1, Asks(40)), running(2, Asks(40)),
                                                     running(3, Asks(40))])
    assert plan == {1: 40, 2: MAX_LINES_PER_TICK - 40}


def test_a_pacer_asking_for_no_line_or_fewer_than_none_gets_no_entry():
    floor = ready_floor(3)
    assert plan_tick(floor, floor.seats(), 1.0, (), [running(1, Asks(0)), running(2, Asks(-5))]) == {}
    assert plan_tick(floor, floor.seats(), 1.0, (), []) == {}


# -- the campaign's own distributions ---------------------------------------------------------

def test_a_campaign_with_few_calls_is_paced_on_the_notes_figures():
    from dialer.campaign_pacing import MIN_SAMPLES, fit
    from dialer.pacing.snapshot import RING_TO_ANSWER, TALK

    few = fit([12.0] * (MIN_SAMPLES - 1), [1.0] * (MIN_SAMPLES - 1))
    assert few.talk is TALK and few.ring_to_answer is RING_TO_ANSWER


def test_a_campaign_with_enough_calls_is_paced_on_its_own_talk_and_ring_times():
    from dialer.campaign_pacing import MIN_CV, fit
    from dialer.pacing.distributions import Clipped, LogNormal

    fitted = fit([10.0, 14.0] * 20, [1.0, 3.0] * 20, ring_timeout_s=8)
    assert fitted.talk == LogNormal(12.0, 2.0)
    assert isinstance(fitted.ring_to_answer, Clipped) and fitted.ring_to_answer.high == 7
    assert fitted.ring_to_answer.inner == LogNormal(2.0, 1.0)
    same = fit([12.0] * 40, [2.0] * 40)
    assert same.talk == LogNormal(12.0, MIN_CV * 12.0), "equal calls are no certainty: a floor on the spread"
    garbage = [float("nan"), float("inf"), 0.1] * 20  # not counted: too few real calls stay the notes' figures
    from dialer.pacing.snapshot import TALK
    assert fit(garbage + [12.0] * 29, []).talk is TALK
    assert fit(garbage + [12.0] * 30, []).talk == LogNormal(12.0, MIN_CV * 12.0)


def test_the_fitted_distributions_reach_the_pacers_snapshot():
    from dialer.campaign_pacing import Fitted, Running, floor_snapshot
    from dialer.floor import Floor
    from dialer.pacing.distributions import LogNormal
    from dialer.pacing.pacer import Progressive
    from dialer.pacing.snapshot import CallCounts

    talk = LogNormal(12.0, 3.0)
    snapshot = floor_snapshot(Floor(), (), 0.0, (), Running(1, Progressive(), CallCounts(), 0.03,
                                                             Fitted(talk=talk)))
    assert snapshot.observed.talk is talk
