"""Pure call tracker: typed AMI events in, immutable call snapshots out.

No I/O, no asyncio, no clock: every timestamp comes from the events (``at``).

Calls are keyed by Uniqueid (the dialer sets Originate ``ChannelId`` = attempt id, so
the uniqueid IS the attempt id). Lifecycle, forward only::

    down -> ringing -> up -> ended        (ended is terminal)

* A call is created by the first channel event seen for its uniqueid (normally
  Newchannel) or by a resync; ``accept(uniqueid)`` can restrict which are tracked.
* Hangup ends it. The ``ended`` update carries the final snapshot; the call is then
  dropped from memory and its uniqueid kept in a bounded tombstone set, so late
  events can never resurrect (un-end) it.
* What an ended call means for its attempt (answered, busy, ...) is not decided here: the
  attempt lifecycle's one outcome rule (storage/lifecycle.py) does that from
  ``answered`` and ``hangup_cause``.
* :meth:`CallTracker.resync` rebuilds the table from a CoreShowChannels listing taken
  after a (re)login; tracked calls absent from it are ended with
  ``ended_by_resync=True`` and ``hangup_cause=None`` (fail closed: reconcile them).
  Times learned by a resync are approximate: ``created_at = at - Duration``,
  ``answered_at``/``bridged_at`` = the resync time.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Literal

from .events import (
    AmiEvent, BridgeEnter, BridgeLeave, ChannelEvent, CoreShowChannel, DialEnd, DialEvent,
    Hangup, UserEvent, VarSet,
)

Phase = Literal["down", "ringing", "up", "ended"]


@dataclass(frozen=True, slots=True)
class CallState:
    """Immutable snapshot of one call (one channel, keyed by uniqueid)."""

    uniqueid: str
    linkedid: str
    channel: str
    state: Phase
    created_at: float
    answered_at: float | None = None
    bridged_at: float | None = None  # first BridgeEnter
    unbridged_at: float | None = None  # last BridgeLeave
    ended_at: float | None = None
    hangup_cause: int | None = None  # None: not ended, or ended by resync (unknown)
    hangup_cause_txt: str = ""
    dial_status: str = ""  # last DialEnd DialStatus where this call was caller or callee
    vars: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ended_by_resync: bool = False
    pbx_created_at: float | None = None  # when the PBX made the channel, by its own clock (epoch)

    @property
    def answered(self) -> bool:
        """True once the channel has been Up."""
        return self.answered_at is not None


class UpdateKind(str, Enum):
    """Why a CallUpdate was emitted."""

    CREATED = "created"
    RINGING = "ringing"
    ANSWERED = "answered"
    BRIDGED = "bridged"
    UNBRIDGED = "unbridged"
    DIAL_END = "dial_end"
    VAR_SET = "var_set"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """One change of one call: ``call`` is the snapshot right after the change."""

    kind: UpdateKind
    call: CallState
    at: float


# The whole state table. Asterisk ChannelState -> phase; a phase is only ever entered
# moving forward (rank), so a late or odd Newstate never moves a call backwards.
_PHASE_OF_CHANNEL_STATE: Mapping[int, Phase] = MappingProxyType({
    0: "down", 1: "down", 2: "down", 3: "ringing", 4: "ringing", 5: "ringing", 6: "up",
    8: "ringing", 9: "ringing",
})
_RANK: Mapping[Phase, int] = MappingProxyType({"down": 0, "ringing": 1, "up": 2, "ended": 3})
_ENTER_KIND: Mapping[Phase, UpdateKind] = MappingProxyType(
    {"ringing": UpdateKind.RINGING, "up": UpdateKind.ANSWERED})


class CallTracker:
    """Holds the live calls; :meth:`apply` and :meth:`resync` return what changed."""

    def __init__(
        self,
        *,
        accept: Callable[[str], bool] | None = None,
        tracked_vars: Collection[str] | None = None,
        max_vars: int = 256,
        tombstones: int = 100_000,
    ) -> None:
        """``accept``: which uniqueids to track (default all). ``tracked_vars``: VarSet
        names kept in ``vars`` (default all, at most ``max_vars`` per call).
        ``tombstones``: how many ended uniqueids are remembered to ignore late events."""
        self._accept = accept
        self._tracked_vars = None if tracked_vars is None else frozenset(tracked_vars)
        self._max_vars = max_vars
        self._max_tombstones = tombstones
        self._calls: dict[str, CallState] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()

    # -- queries ---------------------------------------------------------------
    def get(self, uniqueid: str) -> CallState | None:
        """The live call with this uniqueid, or None (unknown or already ended)."""
        return self._calls.get(uniqueid)

    @property
    def calls(self) -> Mapping[str, CallState]:
        """A read-only copy of the live calls."""
        return MappingProxyType(dict(self._calls))

    def has_ended(self, uniqueid: str) -> bool:
        """True if this uniqueid was ended (and is still remembered as such)."""
        return uniqueid in self._ended

    def __len__(self) -> int:
        return len(self._calls)

    def forget(self, uniqueid: str) -> None:
        """Drop a live call without reporting it; later events for it are ignored."""
        if self._calls.pop(uniqueid, None) is not None:
            self._tombstone(uniqueid)

    # -- transitions -----------------------------------------------------------
    def apply(self, event: AmiEvent) -> list[CallUpdate]:
        """Apply one event; return the updates it caused (often none)."""
        out: list[CallUpdate] = []
        if isinstance(event, UserEvent) or not isinstance(event, ChannelEvent):
            return out
        at = event.at
        if isinstance(event, DialEvent):
            parties = [(event.dest_uniqueid, event.dest_channel, event.dest_linkedid,
                        event.dest_channel_state),
                       (event.uniqueid, event.channel, event.linkedid, event.channel_state)]
            for uid, channel, linkedid, channel_state in parties:
                call = self._touch(uid, channel, linkedid, channel_state, at, at, out, event.pbx_at)
                if call is not None and isinstance(event, DialEnd):
                    self._store(replace(call, dial_status=event.dial_status),
                                UpdateKind.DIAL_END, at, out)
            return out
        call = self._touch(event.uniqueid, event.channel, event.linkedid,
                           event.channel_state, at, at, out, event.pbx_at)
        if call is None:
            return out
        if isinstance(event, Hangup):
            self._end(call, at, event.cause, event.cause_txt, False, out)
        elif isinstance(event, BridgeEnter) and call.bridged_at is None:
            self._store(replace(call, bridged_at=at), UpdateKind.BRIDGED, at, out)
        elif isinstance(event, BridgeLeave):
            self._store(replace(call, unbridged_at=at), UpdateKind.UNBRIDGED, at, out)
        elif isinstance(event, VarSet) and self._keeps_var(call, event.variable):
            new_vars = MappingProxyType({**call.vars, event.variable: event.value})
            self._store(replace(call, vars=new_vars), UpdateKind.VAR_SET, at, out)
        return out

    def resync(self, channels: Iterable[CoreShowChannel], at: float) -> list[CallUpdate]:
        """Rebuild from a CoreShowChannels listing taken at ``at`` after a (re)login.
        Listed channels are created/advanced; tracked calls not listed are ended with
        ``ended_by_resync=True`` and an unknown cause."""
        out: list[CallUpdate] = []
        present: set[str] = set()
        for ch in channels:
            present.add(ch.uniqueid)
            created_at = at - max(ch.duration, 0)
            call = self._touch(ch.uniqueid, ch.channel, ch.linkedid, ch.channel_state,
                               created_at, at, out,
                               None if ch.pbx_at is None else ch.pbx_at - max(ch.duration, 0))
            if call is not None and ch.bridge_id and call.bridged_at is None:
                self._store(replace(call, bridged_at=at), UpdateKind.BRIDGED, at, out)
        for uid in [u for u in self._calls if u not in present]:
            self._end(self._calls[uid], at, None, "", True, out)
        return out

    # -- helpers -----------------------------------------------------------------
    def _touch(self, uid: str, channel: str, linkedid: str, channel_state: int,
               created_at: float, at: float, out: list[CallUpdate],
               pbx_created_at: float | None = None) -> CallState | None:
        """Find or create the call, refresh its names, advance its phase."""
        if not uid or uid in self._ended or (self._accept and not self._accept(uid)):
            return None
        call = self._calls.get(uid)
        if call is None:
            call = CallState(uid, linkedid, channel, "down", created_at, pbx_created_at=pbx_created_at)
            self._store(call, UpdateKind.CREATED, at, out)
        elif (channel and channel != call.channel) or (linkedid and linkedid != call.linkedid):
            call = replace(call, channel=channel or call.channel,
                           linkedid=linkedid or call.linkedid)
            self._calls[uid] = call
        phase = _PHASE_OF_CHANNEL_STATE.get(channel_state)
        if phase is not None and _RANK[phase] > _RANK[call.state]:
            answered_at = at if phase == "up" and call.answered_at is None else call.answered_at
            call = replace(call, state=phase, answered_at=answered_at)
            self._store(call, _ENTER_KIND[phase], at, out)
        return call

    def _end(self, call: CallState, at: float, cause: int | None, cause_txt: str,
             by_resync: bool, out: list[CallUpdate]) -> None:
        final = replace(call, state="ended", ended_at=at, hangup_cause=cause,
                        hangup_cause_txt=cause_txt, ended_by_resync=by_resync)
        out.append(CallUpdate(UpdateKind.ENDED, final, at))
        del self._calls[call.uniqueid]
        self._tombstone(call.uniqueid)

    def _store(self, call: CallState, kind: UpdateKind, at: float,
               out: list[CallUpdate]) -> CallState:
        self._calls[call.uniqueid] = call
        out.append(CallUpdate(kind, call, at))
        return call

    def _keeps_var(self, call: CallState, name: str) -> bool:
        if not name or (self._tracked_vars is not None and name not in self._tracked_vars):
            return False
        return name in call.vars or len(call.vars) < self._max_vars

    def _tombstone(self, uid: str) -> None:
        self._ended[uid] = None
        while len(self._ended) > self._max_tombstones:
            self._ended.popitem(last=False)


__all__ = ["CallState", "CallTracker", "CallUpdate", "UpdateKind"]
