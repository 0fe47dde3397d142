"""The attempt lifecycle, pure: its states, the one transition table, the one outcome rule.

Every report about an attempt (the dialer's Originate, the dialplan's `bind` and hang-up
handler through FastAGI, the PBX's channel events over AMI, the hang-up record the
dialplan leaves in the spool, the resync after an AMI reconnect) goes through
:func:`decide`, which says what the report changes, or why it is refused::

    created ──originate queued──▶ originated ──answered──▶ answered ──recording runs──▶ bound
       │  └─originate unknown─▶ unknown    └──────── bound (bind: answered, recording runs) ──▶ │
       └─────── originate failed / hung up (any open state, unknown too) ──▶ ended ◀────────────┘
    originated / answered / bound ──vanished (gone, nobody reported its end)──▶ unknown

The PBX starts the recording itself the moment the debtor answers (the dialplan's
MixMonitor, named by the attempt), so `bind` reports the answer and the running recording
in one report (`bound` straight from `created`, `originated` or an unknown Originate), and
every report of an answered call's end names its recording: a call whose bind never
happened (the service was slow, down, or refused it) is still archived.

`ended` is terminal; `unknown` ends too, but a later record of the PBX (the hang-up
handler's report or its spool record) reconciles it to `ended`. A report that would move
an attempt backwards (a second bind, a bind after the end, an answer after the end) is
refused; the caller audits the refusal. A second report of the end only fills in what the
first did not know, and can turn an `unknown` outcome into a known one, never the reverse.

The outcome of a finished call is decided in exactly one place, :func:`classify`: an
answered call is `answered` whatever the cause; otherwise the Q.850 cause tells busy, no
answer, congestion and invalid number apart (measured on Asterisk 22 PJSIP).

Nothing here does I/O; `storage/attempt_reports.py` applies verdicts to the database.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal


class State(str, enum.Enum):
    CREATED = "created"  # the row is written (write-ahead); the Originate is not yet queued
    ORIGINATED = "originated"  # the PBX queued the Originate: the number rings
    ANSWERED = "answered"  # the debtor answered; bind is starting the recording
    BOUND = "bound"  # the recording runs: the debtor may be bridged to a collector
    ENDED = "ended"  # over, with an outcome (terminal)
    UNKNOWN = "unknown"  # the outcome could not be learnt: never redialled until reconciled


OPEN_STATES = frozenset({State.CREATED, State.ORIGINATED, State.ANSWERED, State.BOUND})
LIVE_CALL_STATES = frozenset({State.ORIGINATED, State.ANSWERED, State.BOUND})


class Outcome(str, enum.Enum):
    """What happened to a call attempt, for the dialer's retry policy and the reports."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    INVALID = "invalid"
    FAILED = "failed"
    UNKNOWN = "unknown"


# Q.850 hang-up cause of an UNANSWERED call -> outcome. Measured on Asterisk 22 PJSIP:
# busy 17; no answer 19 (18 too); congestion 34 (38, 41, 42, 44 too); unallocated
# number 1 (3, 28 too; 22 "number changed" is the same thing); 21 call rejected is a
# failure, not a no-answer. Any other cause -> FAILED.
_CAUSE_OUTCOME: Mapping[int, Outcome] = MappingProxyType({
    17: Outcome.BUSY,
    18: Outcome.NO_ANSWER, 19: Outcome.NO_ANSWER,
    34: Outcome.CONGESTION, 38: Outcome.CONGESTION, 41: Outcome.CONGESTION,
    42: Outcome.CONGESTION, 44: Outcome.CONGESTION,
    1: Outcome.INVALID, 3: Outcome.INVALID, 22: Outcome.INVALID, 28: Outcome.INVALID,
    21: Outcome.FAILED,
})
# 0: no cause recorded. 16 (normal clearing) without an answer contradicts itself
# (we hung up first? events lost?): fail closed and let the caller reconcile.
_UNKNOWN_CAUSES = frozenset({0, 16})


def classify(answered: bool, cause: int | None) -> Outcome:
    """The outcome of a finished call. ``answered`` wins over the cause; no cause -> UNKNOWN."""
    if answered:
        return Outcome.ANSWERED
    if cause is None or cause in _UNKNOWN_CAUSES:
        return Outcome.UNKNOWN
    return _CAUSE_OUTCOME.get(cause, Outcome.FAILED)


class Event(str, enum.Enum):
    ORIGINATE_QUEUED = "originate_queued"  # the PBX accepted the async Originate
    ORIGINATE_FAILED = "originate_failed"  # no channel was ever made
    ORIGINATE_UNKNOWN = "originate_unknown"  # the link dropped after the Originate was sent
    ANSWERED = "answered"  # bind began: the debtor answered
    BOUND = "bound"  # MixMonitor opened the recording: the call may be bridged
    HUNG_UP = "hung_up"  # the call is over
    VANISHED = "vanished"  # gone from the PBX while the link was down; nobody reported its end


class Source(str, enum.Enum):
    DIALER = "dialer"  # the Originate and its response
    AGI = "agi"  # the dialplan through FastAGI: bind, the hang-up handler
    AMI = "ami"  # the PBX's channel events
    SPOOL = "spool"  # the hang-up record the dialplan wrote beside the recording
    RESYNC = "resync"  # the PBX's channel list after an AMI (re)login


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One report about one attempt. Fields other than event/source/at are optional facts
    the reporter knows; `decide` uses the ones its event needs."""

    event: Event
    source: Source
    at: datetime  # when the reporter learnt it (the service's clock)
    note: str | None = None
    recording_name: str | None = None  # BOUND; the end of an answered call: the dialplan's recording
    answered: bool = False  # HUNG_UP: the PBX saw the call answered (AMI Up, the hang-up handler ran)
    hangup_cause: int | None = None
    dial_status: str | None = None
    answered_seconds: float | None = None  # answer -> hang-up, by the PBX (ANSWEREDTIME)
    bridged_seconds: float | None = None  # with a collector (AMI bridge events)
    answer_to_bridge_s: float | None = None  # the debtor's answer -> bridged to a collector (AMI events)
    pbx_started_at: datetime | None = None  # the channel's creation by the PBX's own clock
    collector: str | None = None  # BOUND on the floor: the phone (seat) the debtor was given
    abandoned: bool = False  # BOUND on the floor: no collector was ready in time, the debtor heard the message
    amd: str | None = None  # BOUND: answering-machine detection's verdict (a campaign with AMD)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None and v is not False}
        out["event"], out["source"] = self.event.value, self.source.value
        for name in ("at", "pbx_started_at"):
            if name in out:
                out[name] = out[name].isoformat()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["event"], values["source"] = Event(values["event"]), Source(values["source"])
        for name in ("at", "pbx_started_at"):
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the lifecycle needs to know of an attempt as stored."""

    state: State
    answered_at: datetime | None = None
    recording_name: str | None = None
    outcome: Outcome | None = None
    ended_at: datetime | None = None
    originated_at: datetime | None = None
    hangup_cause: int | None = None
    dial_status: str | None = None
    answered_seconds: float | None = None
    bridged_seconds: float | None = None
    pbx_started_at: datetime | None = None
    answer_to_bridge_s: float | None = None

    @classmethod
    def of(cls, row: Any) -> Facts:
        """From an Attempt row (or anything with the same attributes)."""
        return cls(State(row.state), row.answered_at, row.recording_name,
                   Outcome(row.outcome) if row.outcome else None, row.ended_at, row.originated_at,
                   row.hangup_cause, row.dial_status, row.answered_seconds, row.bridged_seconds,
                   getattr(row, "pbx_started_at", None), getattr(row, "answer_to_bridge_s", None))


Kind = Literal["apply", "fill", "duplicate", "refuse"]
IngestStep = Literal["start", "due"] | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a report does: `apply` moves the state, `fill` adds facts without moving it,
    `duplicate` changes nothing (a report seen before), `refuse` is a report that would
    move the attempt backwards (audit it)."""

    kind: Kind
    state: State  # the state after the report
    changes: Mapping[str, Any] = field(default_factory=dict)  # columns to set
    reason: str = ""
    ingest: IngestStep = None  # "start": a recording began; "due": its call is over, archive it
    audit: str | None = None  # the audit action of a notable transition


def _refuse(facts: Facts, reason: str) -> Verdict:
    return Verdict("refuse", facts.state, reason=reason)


def _same(facts: Facts) -> Verdict:
    return Verdict("duplicate", facts.state)


# The transition table: (state, event) -> the state the event moves it to. Pairs not in
# the table are handled in `decide` as a fill, a duplicate or a refusal.
TRANSITIONS: Mapping[tuple[State, Event], State] = MappingProxyType({
    (State.CREATED, Event.ORIGINATE_QUEUED): State.ORIGINATED,
    (State.CREATED, Event.ORIGINATE_UNKNOWN): State.UNKNOWN,
    (State.CREATED, Event.ORIGINATE_FAILED): State.ENDED,
    (State.ORIGINATED, Event.ORIGINATE_FAILED): State.ENDED,
    (State.UNKNOWN, Event.ORIGINATE_FAILED): State.ENDED,
    # the PBX may answer before the Originate's acknowledgement is processed
    (State.CREATED, Event.ANSWERED): State.ANSWERED,
    (State.ORIGINATED, Event.ANSWERED): State.ANSWERED,
    (State.UNKNOWN, Event.ANSWERED): State.ANSWERED,  # only an unknown Originate, see decide
    (State.ANSWERED, Event.BOUND): State.BOUND,
    # bind reports the answer and the dialplan's running recording at once
    (State.CREATED, Event.BOUND): State.BOUND,
    (State.ORIGINATED, Event.BOUND): State.BOUND,
    (State.UNKNOWN, Event.BOUND): State.BOUND,  # only an unknown Originate, see decide
    (State.CREATED, Event.HUNG_UP): State.ENDED,
    (State.ORIGINATED, Event.HUNG_UP): State.ENDED,
    (State.ANSWERED, Event.HUNG_UP): State.ENDED,
    (State.BOUND, Event.HUNG_UP): State.ENDED,
    (State.UNKNOWN, Event.HUNG_UP): State.ENDED,  # reconciled by a record of the PBX
    (State.ORIGINATED, Event.VANISHED): State.UNKNOWN,
    (State.ANSWERED, Event.VANISHED): State.UNKNOWN,
    (State.BOUND, Event.VANISHED): State.UNKNOWN,
})

# fields a later report of the end may fill in when the first one did not know them
_END_FACTS = ("hangup_cause", "dial_status", "answered_seconds", "bridged_seconds", "pbx_started_at",
              "answer_to_bridge_s")


def decide(facts: Facts, report: Report) -> Verdict:
    """What `report` does to an attempt in `facts` (see the module docstring)."""
    event, state = report.event, facts.state
    target = TRANSITIONS.get((state, event))
    if state is State.UNKNOWN and event in (Event.ANSWERED, Event.BOUND, Event.ORIGINATE_FAILED) \
            and (facts.ended_at is not None or facts.answered_at is not None):
        # only an Originate whose fate was unknown may still turn out answered or failed
        return _refuse(facts, f"the call was {'answered' if facts.answered_at else 'gone'} before: "
                              f"{event.value} now contradicts the PBX")
    if target is not None:
        return _transition(facts, report, target)
    return _outside_table(facts, report)


def _transition(facts: Facts, report: Report, target: State) -> Verdict:
    event, at = report.event, report.at
    changes: dict[str, Any] = {"state": target.value}
    ingest: IngestStep = None
    audit = None
    if event is Event.ORIGINATE_QUEUED:
        changes["originated_at"] = at
    elif event is Event.ORIGINATE_UNKNOWN:
        changes.update(outcome=Outcome.UNKNOWN.value, note=report.note)
        audit = "attempt.unknown"
    elif event is Event.ORIGINATE_FAILED:
        changes.update(outcome=Outcome.FAILED.value, ended_at=at, note=report.note)
        audit = "attempt.failed"
    elif event is Event.ANSWERED:
        changes["answered_at"] = at
    elif event is Event.BOUND:
        changes.update(bound_at=at, recording_name=report.recording_name)
        if report.collector:  # on the floor the collector is whoever was ready, not the one named at dial
            changes["collector"] = report.collector
        if report.abandoned:
            changes["abandoned"] = True
        if report.amd:
            changes["amd"] = report.amd
        if facts.answered_at is None:
            changes["answered_at"] = at
        ingest = "start"
        audit = "call.bound"
    elif event is Event.HUNG_UP:
        answered = facts.answered_at is not None or report.answered
        changes.update(outcome=classify(answered, report.hangup_cause).value, ended_at=at,
                       **{name: getattr(report, name) for name in _END_FACTS
                          if getattr(report, name) is not None})
        if report.note:
            changes["note"] = report.note
        if facts.state is State.UNKNOWN:
            audit = "attempt.reconciled"
        recording = _recording_of_end(facts, report)
        if recording != facts.recording_name:
            changes["recording_name"] = recording
        ingest = "due" if recording else None
    elif event is Event.VANISHED:
        changes.update(outcome=Outcome.UNKNOWN.value, ended_at=at, note=report.note)
        audit = "attempt.unknown"
        ingest = "due" if facts.recording_name else None
    return Verdict("apply", target, changes, ingest=ingest, audit=audit)


def _outside_table(facts: Facts, report: Report) -> Verdict:
    event, state = report.event, facts.state
    if event is Event.ORIGINATE_QUEUED:
        # events moved it on already (the PBX answered first): keep the time, nothing else
        if facts.originated_at is None and state is not State.UNKNOWN:
            return Verdict("fill", state, {"originated_at": report.at})
        return _same(facts)
    if event is Event.ORIGINATE_UNKNOWN:
        return _same(facts)  # the call is known to exist: its own reports decide
    if event is Event.ORIGINATE_FAILED:
        if state is State.ENDED:
            return _same(facts)
        return _refuse(facts, f"the Originate is reported failed, but the call is {state.value}")
    if event is Event.ANSWERED:
        if state is State.ANSWERED:
            return _same(facts)
        return _refuse(facts, f"attempt already {state.value}")
    if event is Event.BOUND:
        if state is State.BOUND and facts.recording_name == report.recording_name:
            return _same(facts)
        answered = facts.answered_at is not None or facts.outcome is Outcome.ANSWERED
        if state in (State.ENDED, State.UNKNOWN) and answered and report.recording_name \
                and facts.recording_name in (None, report.recording_name):
            # the call ended before its binding was stored (the debtor hung up during bind, or
            # right after a bridge that did not wait for the database): note it, keep the file
            if facts.recording_name is None:
                return Verdict("fill", state, {"bound_at": report.at, "recording_name": report.recording_name},
                               ingest="due")
            return Verdict("fill", state, {"bound_at": report.at})
        return _refuse(facts, f"attempt {state.value}: cannot be bound now")
    if event is Event.HUNG_UP:
        if state is State.ENDED:
            return _fill_end(facts, report)
        return _refuse(facts, f"attempt {state.value}: no end to report")  # not reached: table
    if event is Event.VANISHED:
        if state in (State.ENDED, State.UNKNOWN):
            return _same(facts)
        return Verdict("duplicate", state, reason="not originated yet: the resync ignores it")
    raise AssertionError(f"unhandled event {event}")  # pragma: no cover


def _fill_end(facts: Facts, report: Report) -> Verdict:
    """A second report of the end: it adds what only it knows; an unknown outcome may become
    known (the hang-up handler ran: the call was answered), a known one never changes."""
    changes: dict[str, Any] = {name: getattr(report, name) for name in _END_FACTS
                               if getattr(facts, name) is None and getattr(report, name) is not None}
    ingest: IngestStep = None
    if facts.recording_name is None and (recording := _recording_of_end(facts, report)):
        changes["recording_name"] = recording  # the first report of the end did not name it
        ingest = "due"
    if facts.outcome in (None, Outcome.UNKNOWN):
        better = classify(facts.answered_at is not None or report.answered,
                          facts.hangup_cause if facts.hangup_cause is not None else report.hangup_cause)
        if better is not Outcome.UNKNOWN:
            changes["outcome"] = better.value
    if not changes:
        return _same(facts)
    return Verdict("fill", facts.state, changes, ingest=ingest)


def _recording_of_end(facts: Facts, report: Report) -> str | None:
    """The recording of a call that is over: the one bind confirmed, else the one the report
    of an answered call names (the dialplan records every answered call from its answer)."""
    if facts.recording_name is not None:
        return facts.recording_name
    answered = facts.answered_at is not None or report.answered
    return report.recording_name if answered else None


def is_over(state: State | str) -> bool:
    """The call of an attempt in this state is over (ended, or gone with its end unknown)."""
    return State(state) in (State.ENDED, State.UNKNOWN)
