"""The attempt lifecycle (storage/lifecycle.py): the table, the outcome rule, refusals, and
properties over any order of reports. Pure: no event loop, no database."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.lifecycle import (TRANSITIONS, Event, Facts, Outcome, Report, Source, State, classify, decide)

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


def report(event: Event, source: Source = Source.AMI, **kw) -> Report:
    return Report(event=event, source=source, at=kw.pop("at", T0), **kw)


def apply(facts: Facts, rep: Report) -> Facts:
    """What the database adapter does with a verdict, on Facts."""
    verdict = decide(facts, rep)
    if verdict.kind in ("apply", "fill"):
        values = {k: v for k, v in verdict.changes.items() if k in Facts.__dataclass_fields__}
        if "state" in values:
            values["state"] = State(values["state"])
        if "outcome" in values:
            values["outcome"] = Outcome(values["outcome"])
        return replace(facts, **values)
    return facts


@pytest.mark.parametrize("answered,cause,outcome", [
    (True, 16, Outcome.ANSWERED), (True, 17, Outcome.ANSWERED), (True, None, Outcome.ANSWERED),
    (False, 17, Outcome.BUSY), (False, 18, Outcome.NO_ANSWER), (False, 19, Outcome.NO_ANSWER),
    (False, 21, Outcome.FAILED), (False, 34, Outcome.CONGESTION), (False, 38, Outcome.CONGESTION),
    (False, 41, Outcome.CONGESTION), (False, 42, Outcome.CONGESTION),
    (False, 44, Outcome.CONGESTION), (False, 1, Outcome.INVALID), (False, 3, Outcome.INVALID),
    (False, 28, Outcome.INVALID), (False, None, Outcome.UNKNOWN), (False, 0, Outcome.UNKNOWN),
    (False, 16, Outcome.UNKNOWN), (False, 127, Outcome.FAILED), (False, 58, Outcome.FAILED),
])
def test_the_one_outcome_rule(answered, cause, outcome):
    assert classify(answered, cause) is outcome


def test_an_answered_recorded_call_from_write_ahead_to_ingest():
    facts = Facts(State.CREATED)
    facts = apply(facts, report(Event.ORIGINATE_QUEUED, Source.DIALER))
    assert facts.state is State.ORIGINATED and facts.originated_at == T0
    facts = apply(facts, report(Event.ANSWERED, Source.AGI, at=T0 + timedelta(seconds=3)))
    assert facts.state is State.ANSWERED
    bound = decide(facts, report(Event.BOUND, Source.AGI, recording_name="r1"))
    assert bound.ingest == "start"
    facts = apply(facts, report(Event.BOUND, Source.AGI, recording_name="r1"))
    end = decide(facts, report(Event.HUNG_UP, Source.AGI, hangup_cause=16, answered=True, answered_seconds=61.0))
    assert (end.kind, end.state, end.changes["outcome"], end.ingest) == ("apply", State.ENDED, "answered", "due")
    facts = apply(facts, report(Event.HUNG_UP, Source.AGI, hangup_cause=16, answered=True, answered_seconds=61.0))
    # the AMI's report of the same end adds the bridged time only
    second = decide(facts, report(Event.HUNG_UP, Source.AMI, hangup_cause=16, bridged_seconds=58.2))
    assert second.kind == "fill" and dict(second.changes) == {"bridged_seconds": 58.2}
    facts = apply(facts, report(Event.HUNG_UP, Source.AMI, hangup_cause=16, bridged_seconds=58.2))
    assert decide(facts, report(Event.HUNG_UP, Source.AMI, hangup_cause=16)).kind == "duplicate"


@pytest.mark.parametrize("cause,outcome", [(17, "busy"), (19, "no_answer"), (34, "congestion"), (1, "invalid")])
def test_unanswered_calls_by_their_cause(cause, outcome):
    facts = Facts(State.ORIGINATED)
    verdict = decide(facts, report(Event.HUNG_UP, hangup_cause=cause))
    assert (verdict.state, verdict.changes["outcome"], verdict.ingest) == (State.ENDED, outcome, None)


@pytest.mark.parametrize("state", [State.BOUND, State.ENDED])
def test_a_second_bind_is_refused(state):
    facts = Facts(state, answered_at=T0, recording_name="r1", outcome=Outcome.ANSWERED if state is State.ENDED else None)
    verdict = decide(facts, report(Event.ANSWERED, Source.AGI))
    assert verdict.kind == "refuse" and state.value in verdict.reason


def test_bind_of_a_call_that_vanished_is_refused():
    facts = Facts(State.UNKNOWN, ended_at=T0, outcome=Outcome.UNKNOWN)
    assert decide(facts, report(Event.ANSWERED, Source.AGI)).kind == "refuse"
    # but an Originate whose fate was unknown may still be answered
    assert decide(Facts(State.UNKNOWN, outcome=Outcome.UNKNOWN), report(Event.ANSWERED, Source.AGI)).state is State.ANSWERED


def test_the_debtor_hanging_up_during_bind_keeps_the_recording():
    facts = Facts(State.ENDED, answered_at=T0, outcome=Outcome.ANSWERED, ended_at=T0)
    verdict = decide(facts, report(Event.BOUND, Source.AGI, recording_name="r1"))
    assert (verdict.kind, verdict.state, verdict.ingest) == ("fill", State.ENDED, "due")
    assert verdict.changes["recording_name"] == "r1"


def test_bind_reports_the_answer_and_the_running_recording_at_once():
    """The dialplan records from the answer; bind's one report is the answer and the binding."""
    for state in (State.CREATED, State.ORIGINATED):
        verdict = decide(Facts(state), report(Event.BOUND, Source.AGI, recording_name="r"))
        assert (verdict.kind, verdict.state, verdict.ingest, verdict.audit) == ("apply", State.BOUND, "start", "call.bound")
        assert verdict.changes["answered_at"] == T0 and verdict.changes["recording_name"] == "r"
    answered_earlier = Facts(State.ANSWERED, answered_at=T0 - timedelta(seconds=1))
    assert "answered_at" not in decide(answered_earlier, report(Event.BOUND, Source.AGI, recording_name="r")).changes


def test_bound_of_a_call_that_is_over_without_an_answer_is_refused():
    never_answered = Facts(State.ENDED, outcome=Outcome.NO_ANSWER, ended_at=T0)
    assert decide(never_answered, report(Event.BOUND, Source.AGI, recording_name="r")).kind == "refuse"
    vanished = Facts(State.UNKNOWN, ended_at=T0, outcome=Outcome.UNKNOWN)
    assert decide(vanished, report(Event.BOUND, Source.AGI, recording_name="r")).kind == "refuse"
    unknown_originate = Facts(State.UNKNOWN, outcome=Outcome.UNKNOWN)
    assert decide(unknown_originate, report(Event.BOUND, Source.AGI, recording_name="r")).state is State.BOUND


def test_every_report_of_an_answered_calls_end_names_its_recording():
    """A call the service never bound (slow, down, or it refused) was recorded by the dialplan
    from its answer: the end names the recording and makes it due for ingest."""
    end = report(Event.HUNG_UP, Source.AGI, answered=True, hangup_cause=16, recording_name="r")
    verdict = decide(Facts(State.ORIGINATED), end)
    assert (verdict.state, verdict.ingest, verdict.changes["recording_name"]) == (State.ENDED, "due", "r")
    # AMI told the end first without naming it: the hang-up handler's report fills it in
    first = Facts(State.ENDED, outcome=Outcome.ANSWERED, ended_at=T0, hangup_cause=16)
    filled = decide(first, end)
    assert (filled.kind, filled.ingest, filled.changes.get("recording_name")) == ("fill", "due", "r")
    # an unanswered call has no recording, whatever a report claims
    unanswered = report(Event.HUNG_UP, Source.AMI, hangup_cause=19, recording_name="r")
    assert "recording_name" not in decide(Facts(State.ORIGINATED), unanswered).changes


def test_a_vanished_call_is_unknown_and_a_later_pbx_record_reconciles_it():
    facts = Facts(State.BOUND, answered_at=T0, recording_name="r1")
    gone = decide(facts, report(Event.VANISHED, Source.RESYNC))
    assert (gone.state, gone.changes["outcome"], gone.audit, gone.ingest) == (State.UNKNOWN, "unknown", "attempt.unknown", "due")
    facts = apply(facts, report(Event.VANISHED, Source.RESYNC))
    later = decide(facts, report(Event.HUNG_UP, Source.SPOOL, hangup_cause=16, answered=True))
    assert (later.state, later.changes["outcome"], later.audit) == (State.ENDED, "answered", "attempt.reconciled")


def test_an_unknown_outcome_becomes_known_but_a_known_one_never_changes():
    facts = Facts(State.ENDED, outcome=Outcome.UNKNOWN, hangup_cause=16, ended_at=T0)
    upgraded = decide(facts, report(Event.HUNG_UP, Source.AGI, hangup_cause=16, answered=True))
    assert upgraded.changes["outcome"] == "answered"
    facts = Facts(State.ENDED, outcome=Outcome.BUSY, hangup_cause=17, ended_at=T0)
    assert decide(facts, report(Event.HUNG_UP, Source.AGI, hangup_cause=16, answered=True)).kind == "duplicate"


def test_a_failed_originate_cannot_end_an_answered_call():
    verdict = decide(Facts(State.BOUND, answered_at=T0, recording_name="r"), report(Event.ORIGINATE_FAILED, Source.DIALER))
    assert verdict.kind == "refuse"


def test_report_round_trips_through_json():
    rep = report(Event.HUNG_UP, Source.SPOOL, hangup_cause=16, answered=True, answered_seconds=12.5,
                 pbx_started_at=T0 - timedelta(seconds=20), note="x")
    assert Report.from_json(rep.to_json()) == rep


# -- properties over any sequence of reports ---------------------------------------------

RANK = {State.CREATED: 0, State.ORIGINATED: 1, State.ANSWERED: 2, State.BOUND: 3, State.UNKNOWN: 4, State.ENDED: 5}

reports = st.builds(
    lambda event, source, cause, answered, name: Report(event=event, source=source, at=T0, hangup_cause=cause,
                                                       answered=answered, recording_name=name),
    st.sampled_from(Event), st.sampled_from(Source), st.sampled_from([None, 0, 1, 16, 17, 19, 21, 34]),
    st.booleans(), st.sampled_from([None, "r1"]))


@settings(max_examples=400)
@given(st.lists(reports, max_size=12))
def test_no_report_sequence_moves_an_attempt_backwards(sequence):
    facts = Facts(State.CREATED)
    for rep in sequence:
        before = facts
        verdict = decide(before, rep)
        facts = apply(before, rep)
        if before.state is State.ENDED:
            assert facts.state is State.ENDED, "ended is terminal"
        elif before.state is not State.UNKNOWN:
            assert RANK[facts.state] >= RANK[before.state], (before, rep, verdict)
        if before.outcome not in (None, Outcome.UNKNOWN):
            assert facts.outcome is before.outcome, "a known outcome never changes"
        if before.answered_at is not None:
            assert facts.answered_at == before.answered_at
        if facts.state is State.ENDED and facts.answered_at is not None:
            assert facts.outcome is Outcome.ANSWERED
        if verdict.kind == "refuse":
            assert facts == before, "a refused report changes nothing"


def test_every_table_entry_moves_forward_or_reconciles():
    for (state, event), target in TRANSITIONS.items():
        assert state is not State.ENDED
        assert RANK[target] > RANK[state] or state is State.UNKNOWN, (state, event, target)


def test_a_binding_stored_after_a_quick_end_is_noted_not_refused():
    """Bridged on AMI's word, the debtor hung up before the binding was written: the end
    (with the recording's name) came first; the binding only notes when it happened."""
    ended = Facts(State.ENDED, outcome=Outcome.ANSWERED, ended_at=T0, recording_name="r1")
    verdict = decide(ended, report(Event.BOUND, Source.AGI, recording_name="r1"))
    assert (verdict.kind, verdict.state, verdict.ingest) == ("fill", State.ENDED, None)
    assert dict(verdict.changes) == {"bound_at": T0}
    assert decide(ended, report(Event.BOUND, Source.AGI, recording_name="other")).kind == "refuse"
