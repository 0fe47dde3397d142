"""The campaign engine: every tick, each running campaign's pacer says how many lines to dial
(dialer/campaign_pacing.py), and the engine dials that many of the campaign's next cases
through the service's own `dial` (the gate, the back-pressure, the number's lease, the
policy, the write-ahead attempt and its recording: nothing is different from a person's dial).

- A case the policy refuses is left alone until the verdict's `next_allowed_at` (or
  `BLOCKED_RETRY_S` when a person must lift it), so a blocked case does not cost a stored
  verdict every tick.
- A campaign paused or stopped meanwhile: its dials are refused in their own transaction
  (`CampaignNotDialling`) and the engine stops dialling it at once.
- Any other refusal (the gate closed, dials held back, the database busy): the tick ends, the
  next one tries again.
- Calls in flight are followed through their attempt's state (created / originated: ringing;
  answered: waiting for a collector; bound or over: no longer the pacer's). The engine's memory
  is only a cache: after a restart it starts with nothing in flight, and the database's
  per-number lease and per-case "call in progress" check keep a case from a second dial.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select

from dialer import campaign_store
from dialer.campaign_pacing import Fitted, InFlight, Running, fit, plan_tick
from dialer.campaigns import pacer_for
from dialer.originate import CampaignNotDialling, DialBlocked, DialError
from dialer.pacing.pacer import Pacer
from storage.campaigns import Campaign
from storage.clock import Clock
from storage.db import Database
from storage.lifecycle import State
from storage.models import Attempt

log = logging.getLogger("dunline.campaigns")

TICK_S = 0.5
BLOCKED_RETRY_S = 600.0  # a case refused with no time given (a person must act) is tried again after this
WINDOW_CACHE_S = 5.0  # the 30-day counts are read at most this often
FIT_EVERY_S = 60.0  # each campaign's ring and talk distributions are refitted this often
RINGING = (State.CREATED.value, State.ORIGINATED.value)

class Dial(Protocol):
    def __call__(self, case_id: str, number: str, *, campaign_id: int) -> Awaitable[Attempt]: ...

class FloorView(Protocol):
    floor: Any

    def now(self) -> float: ...

class CampaignEngine:
    def __init__(self, db: Database, seats: FloorView, dial: Dial, clock: Clock, *, tick_s: float = TICK_S,
                 ring_timeout_s: float = 30.0) -> None:
        self.db = db
        self.seats = seats
        self.dial = dial
        self.clock = clock
        self.tick_s = tick_s
        self._calls: dict[str, InFlight] = {}  # attempt id -> the call, until a collector has it
        self._pacers: dict[int, Pacer] = {}  # kept between ticks (a pacer may learn from its snapshots)
        self._resting: dict[str, float] = {}  # case id -> floor time before which it is not dialled
        self._windows: tuple[float, dict[int, Any]] = (-1e18, {})
        self._fits: dict[int, tuple[float, Fitted]] = {}  # campaign id -> (when fitted, the fit)
        self.ring_timeout_s = ring_timeout_s
        self.placed = 0  # dials placed since start (the wallboard, the tests)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # one bad tick (the database away) never stops the campaigns
                log.exception("campaign tick failed")
            await asyncio.sleep(self.tick_s)

    async def tick(self) -> int:
        """One round: follow the calls in flight, ask the pacers, dial. Returns the dials placed."""
        async with self.db.session() as session:
            campaigns = await campaign_store.dialling(session)
            await self._follow_calls(session)
        if not campaigns:
            self._calls.clear()
            return 0
        now = self.seats.now()
        windows = await self._window_counts([c.id for c in campaigns], now)
        fitted = await self._fitted([c.id for c in campaigns], now)
        running = [Running(c.id, self._pacer(c), windows[c.id], c.target_abandon_rate, fitted[c.id]) for c in campaigns]
        seats = self.seats.floor.seats()
        for seat in seats:  # a call a seat is reserved for (or on) has its collector: no longer in flight
            if seat.attempt_id is not None:
                self._calls.pop(seat.attempt_id, None)
        plan = plan_tick(self.seats.floor, seats, now, tuple(self._calls.values()), running)
        placed = 0
        for campaign in campaigns:
            lines = plan.get(campaign.id, 0)
            if lines:
                more, go_on = await self._dial_for(campaign, lines)
                placed += more
                if not go_on:
                    break
        self.placed += placed
        return placed

    def forget_pacer(self, campaign_id: int) -> None:
        self._pacers.pop(campaign_id, None)

    # -- inside ------------------------------------------------------------------------

    def _pacer(self, campaign: Campaign) -> Pacer:
        pacer = self._pacers.get(campaign.id)
        if pacer is None or pacer.name != campaign.mode:
            pacer = pacer_for(campaign.mode)
            assert pacer is not None, "preview campaigns are not paced"
            self._pacers[campaign.id] = pacer
        return pacer

    async def _window_counts(self, ids: list[int], now: float) -> dict[int, Any]:
        at, cached = self._windows
        if now - at >= WINDOW_CACHE_S or any(i not in cached for i in ids):
            async with self.db.session() as session:
                cached = await campaign_store.window_counts(session, ids, self.clock())
            self._windows = (now, cached)
        return cached

    async def _fitted(self, ids: list[int], now: float) -> dict[int, Fitted]:
        """Each campaign's own ring and talk time distributions, refitted every `FIT_EVERY_S`
        (between refits the same objects: the pacer's tables stay cached)."""
        stale = [i for i in ids if i not in self._fits or now - self._fits[i][0] >= FIT_EVERY_S]
        if stale:
            since = self.clock() - timedelta(days=campaign_store.WINDOW_DAYS)
            async with self.db.session() as session:
                for campaign_id in stale:
                    talk, ring = await campaign_store.samples(session, campaign_id, since)
                    self._fits[campaign_id] = (now, fit(talk, ring, self.ring_timeout_s))
        return {i: self._fits[i][1] for i in ids}

    async def _follow_calls(self, session: Any) -> None:
        if not self._calls:
            return
        states = dict((await session.execute(
            select(Attempt.id, Attempt.state).where(Attempt.id.in_(list(self._calls))))).all())
        now = self.seats.now()
        for attempt_id, call in list(self._calls.items()):
            state = states.get(attempt_id)
            if state in RINGING:
                continue
            if state == State.ANSWERED.value and not call.answered:
                self._calls[attempt_id] = InFlight(call.campaign_id, now, answered=True)
            elif state != State.ANSWERED.value:  # bound (a collector or the message), over, or unknown
                del self._calls[attempt_id]

    async def _dial_for(self, campaign: Campaign, lines: int) -> tuple[int, bool]:
        """Dial up to `lines` of the campaign's next cases; (placed, whether to go on this tick)."""
        now = self.seats.now()
        self._resting = {case: until for case, until in self._resting.items() if until > now}
        async with self.db.session() as session:
            found = await campaign_store.candidates(session, campaign, self.clock(), limit=lines * 2 + 4,
                                                    exclude=set(self._resting))
        placed = 0
        for candidate in found:
            if placed >= lines:
                break
            try:
                attempt = await self.dial(candidate.case_id, candidate.number, campaign_id=campaign.id)
            except CampaignNotDialling as exc:
                log.info("campaign %s: %s", campaign.name, exc)
                return placed, True
            except DialBlocked as exc:
                self._rest(candidate.case_id, exc.decision.next_allowed_at)
                continue
            except DialError as exc:  # the case or phone went away meanwhile
                log.info("campaign %s: case %s not dialled: %s", campaign.name, candidate.case_id, exc)
                self._rest(candidate.case_id, None)
                continue
            except Exception as exc:  # the gate, back-pressure, the database: the next tick tries again
                log.info("campaign %s: dialling held: %s", campaign.name, exc)
                return placed, False
            placed += 1
            if attempt.state in RINGING:
                self._calls[attempt.id] = InFlight(campaign.id, self.seats.now())
        return placed, True

    def _rest(self, case_id: str, until: Any) -> None:
        now = self.seats.now()
        wait = BLOCKED_RETRY_S
        if until is not None:
            wait = max(1.0, min(BLOCKED_RETRY_S, (until - self.clock()) / timedelta(seconds=1)))
        self._resting[case_id] = now + wait
