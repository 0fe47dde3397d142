"""Campaigns on a real (SQLite) database: the store (create, status changes and their audit,
which cases and phones a campaign dials next, its counts), a campaign's dial through
dialer.originate.place_call (refused in its own transaction unless the campaign runs; its
caller-ID pool), the engine's ticks (its `dial` a fake that writes the attempt as the
service would, the floor a real dialer.floor.Floor), and the console's campaign API."""
from __future__ import annotations

import uuid
import zlib
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from dialer import campaign_store
from dialer.campaign_engine import BLOCKED_RETRY_S, CampaignEngine
from dialer.campaigns import CampaignError, spec_from
from dialer.floor import Floor
from dialer.originate import CampaignNotDialling, DialBlocked, DialError, DialSettings, place_call
from dialer.pacing.snapshot import CallCounts
from dialer.policy import Blocked, profile
from people.roles import Role
from storage import repositories as repo
from storage.campaigns import Campaign
from storage.dial_leases import DialLease
from storage.intake import Batch
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, AuditEvent, Case, Phone, PolicyDecision
from storage.people import User
from tests.console_kit import PASSWORD, TEAM, cheap_accounts, console, seed_users, user_of

# the `clock` fixture: 2026-11-30 02:00 UTC, 10:00 in Beijing (inside the policy's window)
TODAY = date(2026, 11, 30)
STATUS_VERBS = {"draft": (), "running": ("start",), "paused": ("start", "pause"), "stopped": ("stop",)}


# -- helpers -------------------------------------------------------------------------------

async def new_campaign(db, clock, name: str = "c1", *, status: str = "running", **fields) -> int:
    """A campaign as a supervisor creates it, then moved to `status` through its own moves."""
    spec = spec_from({"name": name, "mode": fields.pop("mode", "progressive"), **fields})
    async with db.session() as s:
        campaign = await campaign_store.create(s, spec, by="supervisor1", now=clock())
        for verb in STATUS_VERBS[status]:
            await campaign_store.change_status(s, campaign.id, verb, by="supervisor1", now=clock())
        return campaign.id


async def campaign_of(db, campaign_id: int) -> Campaign:
    async with db.session() as s:
        return await campaign_store.get(s, campaign_id)


async def add_case(db, clock, case_id: str, *phones: dict, **fields) -> list[int]:
    """A case (client cu, Beijing, open unless said) with its phones (each a dict of Phone's
    fields; default: one own phone numbered after the case). Returns the phones' ids."""
    phones = phones or ({"number": number_for(case_id), "relation": "own"},)
    async with db.session() as s:
        s.add(Case(id=case_id, client=fields.pop("client", "cu"), debtor_name="Hu", timezone="Asia/Shanghai",
                   created_at=clock(), **fields))
        rows = [Phone(case_id=case_id, **phone) for phone in phones]
        s.add_all(rows)
        await s.flush()
        return [row.id for row in rows]


def number_for(case_id: str) -> str:
    """The case's own number (stable, one per case id)."""
    return f"138{zlib.crc32(case_id.encode()) % 10**8:08d}"


async def add_attempt(db, case_id: str, at: datetime, *, campaign_id: int | None = None, state: str = "ended",
                      phone_id: int | None = None, answered: bool = False, abandoned: bool = False) -> str:
    async with db.session() as s:
        case = await repo.get_case(s, case_id)
        phone = next(p for p in case.phones if phone_id is None or p.id == phone_id)
        attempt = Attempt(id=uuid.uuid4().hex, case_id=case_id, phone_id=phone.id, number=phone.number,
                          state=state, created_at=at, answered_at=at if answered else None, abandoned=abandoned,
                          campaign_id=campaign_id)
        await repo.create_attempt(s, attempt)
        return attempt.id


async def candidate_ids(db, clock, campaign_id: int, limit: int = 50) -> list[str]:
    campaign = await campaign_of(db, campaign_id)
    async with db.session() as s:
        return [c.case_id for c in await campaign_store.candidates(s, campaign, clock(), limit=limit)]


async def rows(db, model, *where) -> list:
    async with db.session() as s:
        order = model.__mapper__.primary_key
        return list((await s.scalars(select(model).where(*where).order_by(*order))).all())


@pytest.fixture
async def people(db, clock):
    """Users of every role (collector1 and teamlead1 in team north), no case yet: user ids by role."""
    return await seed_users(cheap_accounts(db, clock))


# -- create and status ---------------------------------------------------------------------

async def test_a_new_campaign_is_a_draft_and_a_name_is_taken_once(db, clock):
    campaign_id = await new_campaign(db, clock, "autumn", status="draft", client="cu",
                                     selection={"min_overdue_days": 30}, caller_ids=["4008001000"])
    campaign = await campaign_of(db, campaign_id)
    assert (campaign.status, campaign.client, campaign.selection, campaign.phone_order, campaign.caller_ids,
            campaign.created_by, campaign.created_at) == (
        "draft", "cu", {"min_overdue_days": 30}, ["own", "work", "family"], ["4008001000"], "supervisor1", clock())
    with pytest.raises(CampaignError, match="a campaign named 'autumn' exists"):
        await new_campaign(db, clock, "autumn", mode="preview")
    assert [c.name for c in await rows(db, Campaign)] == ["autumn"]
    [created] = await rows(db, AuditEvent, AuditEvent.action == "campaign.created")
    assert (created.actor, created.subject, created.detail) == (
        "supervisor1", f"campaign:{campaign_id}", {"name": "autumn", "mode": "progressive"})


async def test_every_status_change_is_audited_and_stopped_stays_stopped(db, clock):
    campaign_id = await new_campaign(db, clock, status="draft")
    for verb, after in (("start", "running"), ("pause", "paused"), ("start", "running"), ("stop", "stopped")):
        clock.advance(60)
        async with db.session() as s:
            campaign = await campaign_store.change_status(s, campaign_id, verb, by="supervisor1", now=clock())
        assert (campaign.status, campaign.status_changed_by, campaign.status_changed_at) == (
            after, "supervisor1", clock())
    with pytest.raises(CampaignError, match="a stopped campaign cannot start"):
        async with db.session() as s:
            await campaign_store.change_status(s, campaign_id, "start", by="supervisor1", now=clock())
    with pytest.raises(campaign_store.NoSuchCampaign):
        async with db.session() as s:
            await campaign_store.change_status(s, 999, "start", by="supervisor1", now=clock())
    assert (await campaign_of(db, campaign_id)).status == "stopped"
    moves = await rows(db, AuditEvent, AuditEvent.action.like("campaign.%"))
    assert [(m.action, m.detail.get("before"), m.detail.get("after")) for m in moves] == [
        ("campaign.created", None, None), ("campaign.start", "draft", "running"),
        ("campaign.pause", "running", "paused"), ("campaign.start", "paused", "running"),
        ("campaign.stop", "running", "stopped")], "a refused move leaves no audit entry"
    assert {m.subject for m in moves} == {f"campaign:{campaign_id}"}


# -- which cases, which phone --------------------------------------------------------------

@pytest.fixture
async def book(db, clock, people):
    """K-1: cu, batch 1, ¥500, 60 days overdue, collector1 (team north), card, north;
    K-2: cu, batch 2, ¥50, 10 days, nobody's, loan, south; K-3: client zz, ¥200, 100 days;
    K-4: cu, batch 1, closed."""
    async with db.session() as s:
        batches = [Batch(client=client, code=code, created_at=clock(), created_by="test")
                   for client, code in (("cu", "b1"), ("cu", "b2"), ("zz", "b3"))]
        s.add_all(batches)
        await s.flush()
        b1, b2, b3 = (b.id for b in batches)
    collector = people[Role.COLLECTOR]
    async with db.session() as s:
        team = (await s.get(User, collector)).team_id
    await add_case(db, clock, "K-1", batch_id=b1, amount_due_cents=50_000, overdue_since=TODAY - timedelta(days=60),
                   collector_id=collector, team_id=team, segment="card", region="north")
    await add_case(db, clock, "K-2", batch_id=b2, amount_due_cents=5_000, overdue_since=TODAY - timedelta(days=10),
                   segment="loan", region="south")
    await add_case(db, clock, "K-3", client="zz", batch_id=b3, amount_due_cents=20_000,
                   overdue_since=TODAY - timedelta(days=100))
    await add_case(db, clock, "K-4", batch_id=b1, amount_due_cents=50_000, overdue_since=TODAY - timedelta(days=60),
                   status="closed")
    return {"b1": b1, "b2": b2, "collector": collector, "team": team}


@pytest.mark.parametrize("client, selection, expected", [
    (None, {}, ["K-1", "K-2", "K-3"]),
    ("cu", {}, ["K-1", "K-2"]),
    ("zz", {}, ["K-3"]),
    (None, {"batches": ["b1"]}, ["K-1"]),
    (None, {"batches": ["b1", "b2"]}, ["K-1", "K-2"]),
    (None, {"collectors": ["collector"]}, ["K-1"]),
    (None, {"teams": ["team"]}, ["K-1"]),
    (None, {"min_amount_cents": 10_000}, ["K-1", "K-3"]),
    (None, {"max_amount_cents": 10_000}, ["K-2"]),
    (None, {"min_amount_cents": 10_000, "max_amount_cents": 20_000}, ["K-3"]),
    (None, {"min_overdue_days": 30}, ["K-1", "K-3"]),
    (None, {"max_overdue_days": 30}, ["K-2"]),
    (None, {"min_overdue_days": 60, "max_overdue_days": 60}, ["K-1"]),
    (None, {"segments": ["loan"]}, ["K-2"]),
    (None, {"regions": ["north", "east"]}, ["K-1"]),
    ("cu", {"min_amount_cents": 10_000, "max_overdue_days": 30}, []),
])
async def test_candidates_are_the_open_cases_of_the_selection(db, clock, book, client, selection, expected):
    chosen = {k: [book[x] for x in v] if k in ("batches", "collectors", "teams") else v for k, v in selection.items()}
    campaign_id = await new_campaign(db, clock, client=client, selection=chosen)
    assert await candidate_ids(db, clock, campaign_id) == expected, "K-4 (closed) never"


async def test_a_case_with_a_call_in_progress_is_not_a_candidate(db, clock):
    campaign_id = await new_campaign(db, clock)
    for case_id in ("K-1", "K-2", "K-3", "K-4"):
        await add_case(db, clock, case_id)
    await add_attempt(db, "K-1", clock() - timedelta(seconds=20), state="originated")  # a person's call, ringing
    await add_attempt(db, "K-2", clock() - timedelta(seconds=20), state="bound", campaign_id=campaign_id)
    await add_attempt(db, "K-3", clock() - timedelta(days=1), state="ended")  # over: no matter
    assert await candidate_ids(db, clock, campaign_id) == ["K-3", "K-4"]


async def test_the_retry_spacing_keeps_a_case_the_campaign_tried_recently(db, clock):
    campaign_id = await new_campaign(db, clock, retry_spacing_s=3600)
    other = await new_campaign(db, clock, "other")
    for case_id in ("K-1", "K-2", "K-3", "K-4"):
        await add_case(db, clock, case_id)
    await add_attempt(db, "K-1", clock() - timedelta(minutes=10), campaign_id=campaign_id)
    await add_attempt(db, "K-2", clock() - timedelta(minutes=61), campaign_id=campaign_id)
    await add_attempt(db, "K-3", clock() - timedelta(minutes=10), campaign_id=other)  # another campaign's call
    await add_attempt(db, "K-4", clock() - timedelta(minutes=10))  # a person's call: the policy's gaps apply
    assert await candidate_ids(db, clock, campaign_id) == ["K-3", "K-4", "K-2"], \
        "K-1 waits; the cases the campaign never tried come first, then the one it tried longest ago"
    clock.advance(50 * 60)
    assert await candidate_ids(db, clock, campaign_id) == ["K-3", "K-4", "K-2", "K-1"]
    assert await candidate_ids(db, clock, campaign_id, limit=2) == ["K-3", "K-4"]


async def test_the_phone_is_picked_by_the_order_and_rotates_to_an_untried_one(db, clock):
    campaign_id = await new_campaign(db, clock, phone_order=["own", "work"], retry_spacing_s=60)
    work, own_dnc, own, family, own2 = await add_case(
        db, clock, "K-1",
        {"number": "13800000001", "relation": "work"},
        {"number": "13800000002", "relation": "own", "do_not_call": True},
        {"number": "13800000003", "relation": "own"},
        {"number": "13800000004", "relation": "family"},
        {"number": "13800000005", "relation": None, "kind": "debtor", "retired_at": clock()})

    async def pick():
        campaign = await campaign_of(db, campaign_id)
        async with db.session() as s:
            [candidate] = await campaign_store.candidates(s, campaign, clock(), limit=5)
        return candidate.phone_id, candidate.number

    assert await pick() == (own, "13800000003")
    await add_attempt(db, "K-1", clock(), campaign_id=campaign_id, phone_id=own)
    clock.advance(120)
    assert await pick() == (work, "13800000001"), "the untried phone next"
    await add_attempt(db, "K-1", clock(), campaign_id=campaign_id, phone_id=work)
    clock.advance(120)
    assert await pick() == (own, "13800000003"), "both tried: the one tried longest ago"
    await add_attempt(db, "K-1", clock(), campaign_id=campaign_id, phone_id=own)
    clock.advance(120)
    assert await pick() == (work, "13800000001")
    assert family and own_dnc and own2  # never: not in the order, on the do-not-call list, retired


async def test_a_case_with_no_phone_to_try_does_not_hide_the_next_case(db, clock):
    campaign_id = await new_campaign(db, clock, mode="preview")
    await add_case(db, clock, "K-1", {"number": "13800000001", "relation": "own", "do_not_call": True})
    await add_case(db, clock, "K-2")
    assert await candidate_ids(db, clock, campaign_id, limit=1) == ["K-2"]


async def test_counts_are_placed_answered_and_abandoned_per_campaign_over_the_window(db, clock, writer):
    first, second, idle = [await new_campaign(db, clock, name) for name in ("first", "second", "idle")]
    await add_case(db, clock, "K-1")
    now = clock()
    await add_attempt(db, "K-1", now - timedelta(days=1), campaign_id=first)  # unanswered
    await add_attempt(db, "K-1", now - timedelta(days=2), campaign_id=first, answered=True)
    await add_attempt(db, "K-1", now - timedelta(days=29), campaign_id=first, answered=True, abandoned=True)
    await add_attempt(db, "K-1", now - timedelta(days=31), campaign_id=first, answered=True, abandoned=True)
    await add_attempt(db, "K-1", now - timedelta(hours=1), answered=True, abandoned=True)  # no campaign's
    await add_attempt(db, "K-1", now - timedelta(hours=1), campaign_id=second, answered=True)
    # the abandon as the floor reports it: a BOUND naming no collector, the debtor heard the message
    on_floor = await add_attempt(db, "K-1", now - timedelta(hours=1), campaign_id=second, state="originated")
    await writer.report(on_floor, Report(event=Event.ANSWERED, source=Source.AGI, at=now))
    await writer.report(on_floor, Report(event=Event.BOUND, source=Source.AGI, at=now, recording_name=on_floor,
                                         abandoned=True))
    async with db.session() as s:
        window = await campaign_store.window_counts(s, [first, second, idle], now)
        since_today = await campaign_store.counts(s, [first, second], datetime(2026, 11, 30, tzinfo=timezone.utc))
        assert await campaign_store.counts(s, [], now) == {}
    assert window == {first: CallCounts(placed=3, answered=2, abandoned=1),
                      second: CallCounts(placed=2, answered=2, abandoned=1), idle: CallCounts()}
    assert since_today == {first: CallCounts(), second: CallCounts(placed=2, answered=2, abandoned=1)}


# -- a campaign's dial through place_call --------------------------------------------------

class RecordingLink:
    def __init__(self) -> None:
        self.originated: list[dict] = []

    async def originate(self, channel, **kw):
        self.originated.append({"channel": channel, **kw})
        return {"Response": "Success", "ActionID": f"a{len(self.originated)}"}


@pytest.fixture
async def dialable(db, clock):
    """Case C-P of client cu (Beijing, an own phone); cu's approved caller IDs 4008001000 and 4008002000."""
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        await repo.approve_caller_id(s, "cu", "4008002000")
    await add_case(db, clock, "C-P", {"number": "15551100001", "relation": "own"})
    return RecordingLink()


async def campaign_dial(db, link, clock, writer, campaign_id, case_id="C-P"):
    return await place_call(db, link, DialSettings(), case_id=case_id, collector="6001", clock=clock, writer=writer,
                            policy=profile("client-default"), campaign_id=campaign_id)


async def nothing_stored(db) -> bool:
    attempts, decisions, leases = [await rows(db, model) for model in (Attempt, PolicyDecision, DialLease)]
    dials = await rows(db, AuditEvent, AuditEvent.action.in_(("attempt.created", "dial.blocked")))
    return (attempts, decisions, leases, dials) == ([], [], [], [])


@pytest.mark.parametrize("status", ["draft", "paused", "stopped"])
async def test_a_campaign_not_running_places_no_call_and_stores_nothing(db, clock, writer, dialable, status):
    campaign_id = await new_campaign(db, clock, status=status)
    with pytest.raises(CampaignNotDialling, match=f"campaign c1 is {status}"):
        await campaign_dial(db, dialable, clock, writer, campaign_id)
    assert dialable.originated == []
    assert await nothing_stored(db), "no attempt, no policy decision, no dial lease left"
    # and the number is free at once: started (a draft or paused one), the campaign dials it
    if status != "stopped":
        async with db.session() as s:
            await campaign_store.change_status(s, campaign_id, "start", by="supervisor1", now=clock())
        assert (await campaign_dial(db, dialable, clock, writer, campaign_id)).campaign_id == campaign_id


async def test_an_unknown_campaign_or_one_of_another_client_is_refused_and_stores_nothing(db, clock, writer,
                                                                                         dialable):
    theirs = await new_campaign(db, clock, "theirs", client="zz")
    for campaign_id, why in ((theirs, "not of campaign theirs's client"), (999, "no campaign 999")):
        with pytest.raises(CampaignNotDialling, match=why):
            await campaign_dial(db, dialable, clock, writer, campaign_id)
    assert dialable.originated == [] and await nothing_stored(db)


async def test_a_running_campaigns_call_names_the_campaign(db, clock, writer, dialable):
    campaign_id = await new_campaign(db, clock, "autumn", client="cu")
    attempt = await campaign_dial(db, dialable, clock, writer, campaign_id)
    assert attempt.campaign_id == campaign_id
    assert attempt.decision["campaign"] == "autumn" and attempt.decision["allowed"] is True
    assert attempt.caller_id == "4008001000", "no pool of its own: the client's whole pool"
    assert [o["channel"] for o in dialable.originated] == ["PJSIP/15551100001@carrier"]
    [decision] = await rows(db, PolicyDecision)
    assert decision.allowed and decision.attempt_id == attempt.id
    async with db.session() as s:
        assert await campaign_store.window_counts(s, [campaign_id], clock()) == {campaign_id: CallCounts(1, 0, 0)}


async def test_a_campaigns_call_follows_the_rules_set_for_the_campaigns_name(db, clock, writer, dialable):
    from datetime import time

    from dialer.policy import every_day, with_overrides
    from dialer.policy_config import PolicyBook

    campaign_id = await new_campaign(db, clock, "autumn")
    mornings = with_overrides(profile("client-default"), windows=every_day(time(8), time(9)))  # 10:00 now
    book = PolicyBook(profile("client-default"), campaigns={(None, "autumn"): mornings})
    with pytest.raises(DialBlocked) as blocked:
        await place_call(db, dialable, DialSettings(), case_id="C-P", collector="6001", clock=clock, writer=writer,
                         policy=book, campaign_id=campaign_id)
    assert blocked.value.decision.rule == "window"
    attempt = await place_call(db, dialable, DialSettings(), case_id="C-P", collector="6001", clock=clock,
                               writer=writer, policy=book)  # the same case, not for the campaign
    assert attempt.campaign_id is None and attempt.decision["campaign"] is None


async def test_a_campaigns_caller_ids_narrow_the_clients_approved_pool(db, clock, writer, dialable):
    narrow = await new_campaign(db, clock, "narrow", caller_ids=["4009999999", "4008002000"])
    attempt = await campaign_dial(db, dialable, clock, writer, narrow)
    assert attempt.caller_id == "4008002000" and dialable.originated[0]["caller_id"] == "4008002000"


async def test_a_campaign_whose_caller_ids_are_none_of_the_approved_ones_is_blocked_by_the_caller_id_rule(
        db, clock, writer, dialable):
    unapproved = await new_campaign(db, clock, "unapproved", caller_ids=["4009999999"])
    with pytest.raises(DialBlocked) as blocked:
        await campaign_dial(db, dialable, clock, writer, unapproved)
    assert blocked.value.decision.rule == "caller_id"
    assert dialable.originated == [] and await rows(db, Attempt) == []
    [decision] = await rows(db, PolicyDecision)
    assert (decision.allowed, decision.rule) == (False, "caller_id")
    assert await rows(db, DialLease) == [], "the refused dial gave its number's lease back"


# -- the engine ----------------------------------------------------------------------------

class FloorView:
    """The engine's view of the floor: a real Floor and the floor's clock (seconds)."""

    def __init__(self, ready: int) -> None:
        self.floor = Floor()
        self.t = 1000.0
        for i in range(ready):
            self.floor.open(f"seat-{i}", f"600{i}", 0.0)
            self.floor.answered(f"seat-{i}", f"PJSIP/600{i}-01", 0.0)

    def now(self) -> float:
        return self.t


class FakeDial:
    """The service's dial as the engine sees it: writes the campaign's attempt (as place_call
    would, in state `state`) unless `refuse` names an exception for the case."""

    def __init__(self, db, clock, *, state: str = "originated") -> None:
        self.db, self.clock, self.state = db, clock, state
        self.calls: list[tuple[str, str, int]] = []
        self.refuse: dict[str, BaseException] = {}

    async def __call__(self, case_id: str, number: str, *, campaign_id: int) -> Attempt:
        self.calls.append((case_id, number, campaign_id))
        if case_id in self.refuse:
            raise self.refuse.pop(case_id)
        async with self.db.session() as s:
            phone = await s.scalar(select(Phone).where(Phone.case_id == case_id, Phone.number == number))
            attempt = Attempt(id=uuid.uuid4().hex, case_id=case_id, phone_id=phone.id, number=number,
                              state=self.state, created_at=self.clock(), campaign_id=campaign_id)
            await repo.create_attempt(s, attempt)
        return attempt

    @property
    def cases(self) -> list[str]:
        return [case_id for case_id, _, _ in self.calls]


async def five_cases(db, clock) -> None:
    for n in range(1, 6):
        await add_case(db, clock, f"K-{n}")


async def test_a_running_progressive_campaign_dials_one_case_per_ready_collector(db, clock):
    await five_cases(db, clock)
    campaign_id = await new_campaign(db, clock)
    dial, view = FakeDial(db, clock), FloorView(ready=3)
    engine = CampaignEngine(db, view, dial, clock)
    assert await engine.tick() == 3
    assert dial.cases == ["K-1", "K-2", "K-3"] and {c for _, _, c in dial.calls} == {campaign_id}
    assert [number for _, number, _ in dial.calls] == [number_for(f"K-{n}") for n in (1, 2, 3)]
    view.t += 1
    assert await engine.tick() == 0, "the three calls in flight cover the three ready collectors"
    async with db.session() as s:  # one answered (still waiting for a collector), one over
        first, second = (await s.scalars(select(Attempt.id).order_by(Attempt.case_id))).all()[:2]
        await s.execute(update(Attempt).where(Attempt.id == first).values(state="answered"))
        await s.execute(update(Attempt).where(Attempt.id == second).values(state="ended"))
    view.t += 1
    assert await engine.tick() == 1
    assert dial.cases[3:] == ["K-4"] and engine.placed == 4


@pytest.mark.parametrize("status, mode", [("paused", "progressive"), ("draft", "progressive"),
                                          ("stopped", "predictive"), ("running", "preview")])
async def test_a_campaign_not_running_or_a_preview_one_is_not_dialled_by_the_engine(db, clock, status, mode):
    await five_cases(db, clock)
    await new_campaign(db, clock, status=status, mode=mode)
    dial = FakeDial(db, clock)
    engine = CampaignEngine(db, FloorView(ready=3), dial, clock)
    assert await engine.tick() == 0 and dial.calls == []


async def test_two_running_campaigns_do_not_both_dial_for_the_same_collectors(db, clock):
    await five_cases(db, clock)
    first = await new_campaign(db, clock, "first")
    await new_campaign(db, clock, "second")
    dial = FakeDial(db, clock)
    engine = CampaignEngine(db, FloorView(ready=2), dial, clock)
    assert await engine.tick() == 2
    assert [c for _, _, c in dial.calls] == [first, first]


async def test_a_blocked_case_rests_until_its_time_and_is_not_retried_every_tick(db, clock):
    await add_case(db, clock, "K-1")
    await add_case(db, clock, "K-2")
    await add_case(db, clock, "K-3")
    await new_campaign(db, clock)
    dial, view = FakeDial(db, clock, state="ended"), FloorView(ready=1)
    dial.refuse["K-1"] = DialBlocked(Blocked("a person must lift it", "dispute", None))
    dial.refuse["K-2"] = DialBlocked(Blocked("too soon", "min_gap", clock() + timedelta(seconds=60)))
    engine = CampaignEngine(db, view, dial, clock)
    assert await engine.tick() == 1
    assert dial.cases == ["K-1", "K-2", "K-3"]
    view.t += 30
    assert await engine.tick() == 0 and len(dial.calls) == 3, "both refused cases rest; K-3 within its spacing"
    view.t += 31
    assert await engine.tick() == 1 and dial.cases[3:] == ["K-2"], "K-2's time has come, not K-1's"
    view.t += BLOCKED_RETRY_S
    assert await engine.tick() == 1 and dial.cases[4:] == ["K-1"]


async def test_a_case_that_cannot_be_dialled_is_skipped_and_the_tick_goes_on(db, clock):
    await five_cases(db, clock)
    await new_campaign(db, clock)
    dial = FakeDial(db, clock)
    dial.refuse["K-1"] = DialError("case K-1 has no phone 13800000000")
    engine = CampaignEngine(db, FloorView(ready=2), dial, clock)
    assert await engine.tick() == 2 and dial.cases == ["K-1", "K-2", "K-3"]


async def test_an_error_other_than_a_dial_error_ends_the_tick_and_the_next_tick_tries_again(db, clock):
    await five_cases(db, clock)
    await new_campaign(db, clock)
    dial, view = FakeDial(db, clock), FloorView(ready=3)
    dial.refuse["K-1"] = RuntimeError("the dialing gate is closed")
    engine = CampaignEngine(db, view, dial, clock)
    assert await engine.tick() == 0 and dial.cases == ["K-1"], "no other case dialled in that tick"
    view.t += 0.5
    assert await engine.tick() == 3 and dial.cases[1:] == ["K-1", "K-2", "K-3"], "K-1 was not made to rest"


async def test_a_campaign_paused_meanwhile_stops_being_dialled_at_once(db, clock):
    await five_cases(db, clock)
    await new_campaign(db, clock)
    dial = FakeDial(db, clock)
    dial.refuse["K-1"] = CampaignNotDialling("campaign c1 is paused: it places no call")
    engine = CampaignEngine(db, FloorView(ready=3), dial, clock)
    assert await engine.tick() == 0 and dial.cases == ["K-1"]


# -- the console ---------------------------------------------------------------------------

NEW = {"name": "autumn", "mode": "progressive", "client": "cu", "selection": {"min_overdue_days": 30}}


class NoDial:
    def __init__(self) -> None:
        self.asked: list[dict] = []

    async def __call__(self, case_id, number, *, requested_by=None, collector=None, **kw):
        self.asked.append({"case_id": case_id, "requested_by": requested_by, **kw})
        if "campaign_id" in kw:
            raise CampaignNotDialling(f"campaign {kw['campaign_id']} is paused: it places no call")
        raise AssertionError("only campaign dials in these tests")


@pytest.fixture
async def app(db, accounts):
    dial = NoDial()
    async with console(db, accounts, dial=dial) as running:
        running.dial = dial
        yield running


async def test_a_supervisor_creates_starts_pauses_and_stops_a_campaign(app, db):
    sup = await app.browser(Role.SUPERVISOR)
    resp = await sup.post("/api/campaigns", json=NEW)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert (created["name"], created["status"], created["created_by"], created["selection"]) == (
        "autumn", "draft", "supervisor1", {"min_overdue_days": 30})
    cid = created["id"]
    for verb, status in (("start", "running"), ("pause", "paused"), ("start", "running"), ("stop", "stopped")):
        resp = await sup.post(f"/api/campaigns/{cid}/{verb}")
        assert resp.status == 200 and (await resp.json())["status"] == status
    resp = await sup.post(f"/api/campaigns/{cid}/start")
    assert resp.status == 409 and "a stopped campaign cannot start" in (await resp.json())["error"]
    assert (await sup.post("/api/campaigns/999/start")).status == 404
    assert (await sup.post(f"/api/campaigns/{cid}/resume")).status == 404
    assert (await sup.get("/api/campaigns/999")).status == 404
    one = await (await sup.get(f"/api/campaigns/{cid}")).json()
    assert (one["status"], one["status_changed_by"]) == ("stopped", "supervisor1")
    actions = [e.action for e in await rows(db, AuditEvent, AuditEvent.action.like("campaign.%"))]
    assert actions == ["campaign.created", "campaign.start", "campaign.pause", "campaign.start", "campaign.stop"]


@pytest.mark.parametrize("bad, says", [
    ({**NEW, "mode": "robocall"}, "mode:"),
    ({**NEW, "target_abandon_rate": 0.05}, "target_abandon_rate:"),
    ({**NEW, "colour": "red"}, "unknown field(s) colour"),
    ({**NEW, "selection": {"batches": [-1]}}, "selection.batches:"),
    ({**NEW, "name": "has space"}, "name:"),
    (["not", "an", "object"], "a campaign is a JSON object"),
])
async def test_a_bad_campaign_is_400_with_what_is_wrong_and_nothing_stored(app, db, bad, says):
    sup = await app.browser(Role.SUPERVISOR)
    resp = await sup.post("/api/campaigns", json=bad)
    assert resp.status == 400 and says in (await resp.json())["error"]
    assert await rows(db, Campaign) == []


async def test_a_campaign_name_is_taken_once_and_a_body_must_be_json(app):
    sup = await app.browser(Role.SUPERVISOR)
    assert (await sup.post("/api/campaigns", json=NEW)).status == 201
    resp = await sup.post("/api/campaigns", json=NEW)
    assert resp.status == 400 and "exists" in (await resp.json())["error"]
    resp = await sup.post("/api/campaigns", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_a_collector_may_not_create_start_or_list_campaigns(app, db, clock):
    campaign_id = await new_campaign(db, clock, status="draft")
    collector = await app.browser(Role.COLLECTOR)
    assert (await collector.post("/api/campaigns", json=NEW)).status == 403
    assert (await collector.post(f"/api/campaigns/{campaign_id}/start")).status == 403
    assert (await collector.get("/api/campaigns")).status == 403
    lead = await app.browser(Role.TEAM_LEAD)
    assert (await lead.post(f"/api/campaigns/{campaign_id}/start")).status == 403, "supervisors only"
    assert (await campaign_of(db, campaign_id)).status == "draft"
    assert [c.name for c in await rows(db, Campaign)] == ["c1"]


async def test_the_list_shows_each_campaigns_counts_over_the_window_and_today(app, db, clock):
    first = await new_campaign(db, clock, "first")
    second = await new_campaign(db, clock, "second", status="paused")
    now = clock()  # 02:00 UTC
    await add_attempt(db, "C-1", now - timedelta(hours=1), campaign_id=first, answered=True)  # today
    await add_attempt(db, "C-1", now - timedelta(days=3), campaign_id=first, answered=True, abandoned=True)
    await add_attempt(db, "C-1", now - timedelta(days=3), campaign_id=first)
    await add_attempt(db, "C-1", now - timedelta(days=40), campaign_id=first, answered=True, abandoned=True)
    sup = await app.browser(Role.SUPERVISOR)
    listed = (await (await sup.get("/api/campaigns")).json())["campaigns"]
    assert [c["id"] for c in listed] == [first, second]
    assert listed[0]["window"] == {"placed": 3, "answered": 2, "abandoned": 1, "abandon_rate": 0.5}
    assert listed[0]["today"] == {"placed": 1, "answered": 1, "abandoned": 0, "abandon_rate": 0.0}
    assert listed[0]["target_met"] is False
    assert listed[1]["window"] == {"placed": 0, "answered": 0, "abandoned": 0, "abandon_rate": 0.0}
    assert listed[1]["target_met"] is True and listed[1]["status"] == "paused"
    lead = await app.browser(Role.TEAM_LEAD)
    assert (await lead.get(f"/api/campaigns/{first}")).status == 200, "the floor's viewers see campaigns"


async def test_preview_gives_each_collector_a_case_within_reach_and_holds_it(app, db, clock, accounts):
    collector = await accounts.user(user_of(Role.COLLECTOR))
    await accounts.add_user(username="collector2", display_name="another", role="collector", password=PASSWORD,
                            by="test", team=TEAM, locale="en")
    mine = [await add_case(db, clock, case_id, collector_id=collector.id, team_id=collector.team_id)
            for case_id in ("P-1", "P-2")]
    preview = await new_campaign(db, clock, "look", mode="preview", client="cu")
    progressive = await new_campaign(db, clock, "auto")
    draft = await new_campaign(db, clock, "later", mode="preview", status="draft")
    one = await app.browser(Role.COLLECTOR)
    assert (await one.post(f"/api/campaigns/{progressive}/next")).status == 409
    assert (await one.post(f"/api/campaigns/{draft}/next")).status == 409
    assert (await one.post("/api/campaigns/999/next")).status == 404
    resp = await one.post(f"/api/campaigns/{preview}/next")
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got == {"campaign": preview, "case_id": "P-1", "phone": mine[0][0], "href": "/cases/P-1",
                   "dial": f"/api/cases/P-1/dial?phone={mine[0][0]}&campaign={preview}"}, \
        "C-1 (nobody's) is beyond a collector's reach"
    lead = await app.browser(Role.TEAM_LEAD)  # reaches team north's cases: P-1 is held for collector1
    assert (await (await lead.post(f"/api/campaigns/{preview}/next")).json())["case_id"] == "P-2"
    assert (await (await one.post(f"/api/campaigns/{preview}/next")).json())["case_id"] == "P-1", "still mine"
    two = await app.browser(username="collector2")
    assert (await two.post(f"/api/campaigns/{preview}/next")).status == 404, "no case of theirs"
    clock.advance(301)  # the holds run out
    assert (await (await lead.post(f"/api/campaigns/{preview}/next")).json())["case_id"] == "P-1"
    sup = await app.browser(Role.SUPERVISOR)
    assert (await sup.post(f"/api/campaigns/{preview}/next")).status == 403, "supervisors take no calls"


async def test_a_dial_for_a_campaign_not_running_is_409_campaign_not_running(app, db, clock):
    paused = await new_campaign(db, clock, status="paused")
    sup = await app.browser(Role.SUPERVISOR)
    resp = await sup.post(f"/api/cases/C-1/dial?campaign={paused}")
    assert resp.status == 409
    refusal = await resp.json()
    assert (refusal["blocked"], refusal["rule"]) == (True, "campaign_not_running")
    assert "paused" in refusal["reason"]
    assert app.dial.asked == [{"case_id": "C-1", "requested_by": "supervisor1", "campaign_id": paused}]
    assert (await sup.post("/api/cases/C-1/dial?campaign=abc")).status == 400
    assert (await sup.post("/api/cases/C-1/dial?campaign=1234567890")).status == 400
    assert len(app.dial.asked) == 1, "a bad campaign id is refused before any dial"
    [audited] = await rows(db, AuditEvent, AuditEvent.action == "case.dial_requested")
    assert audited.detail == {"blocked": "campaign_not_running"}


async def test_a_preview_dial_goes_through_place_call_refused_while_paused_placed_while_running(db, clock, accounts,
                                                                                                writer):
    """The console's dial is place_call here (the policy, the write-ahead attempt, a stub PBX)."""
    link = RecordingLink()

    async def dial(case_id, number, *, requested_by=None, collector=None, campaign_id=None):
        return await place_call(db, link, DialSettings(), case_id=case_id, collector=collector, clock=clock,
                                policy=profile("client-default"), writer=writer, number=number,
                                requested_by=requested_by, campaign_id=campaign_id)

    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
    collector = await accounts.user(user_of(Role.COLLECTOR))
    [phone] = await add_case(db, clock, "P-1", collector_id=collector.id, team_id=collector.team_id)
    campaign_id = await new_campaign(db, clock, "look", mode="preview", status="paused")
    async with console(db, accounts, dial=dial) as running:
        one = await running.browser(Role.COLLECTOR)
        resp = await one.post(f"/api/cases/P-1/dial?phone={phone}&campaign={campaign_id}")
        assert resp.status == 409 and (await resp.json())["rule"] == "campaign_not_running"
        assert link.originated == [] and await rows(db, Attempt) == [] and await rows(db, PolicyDecision) == []
        async with db.session() as s:
            await campaign_store.change_status(s, campaign_id, "start", by="supervisor1", now=clock())
        resp = await one.post(f"/api/cases/P-1/dial?phone={phone}&campaign={campaign_id}")
        assert resp.status == 201, await resp.text()
        [attempt] = await rows(db, Attempt)
        assert (attempt.campaign_id, attempt.decision["campaign"]) == (campaign_id, "look")
        assert len(link.originated) == 1


async def test_a_call_a_seat_is_reserved_for_is_not_counted_again_as_waiting(db, clock):
    """Bind reserves a seat for an answered call before its binding is stored: the call has its
    collector, so the pacer must not count it twice (once waiting, once on the reserved seat)."""
    await five_cases(db, clock)
    await new_campaign(db, clock)
    dial, view = FakeDial(db, clock), FloorView(ready=2)
    engine = CampaignEngine(db, view, dial, clock)
    assert await engine.tick() == 2
    async with db.session() as s:  # both answered; one is given the first seat (not yet stored as bound)
        first, _ = (await s.scalars(select(Attempt.id).order_by(Attempt.case_id))).all()[:2]
        await s.execute(update(Attempt).values(state="answered"))
    view.floor.reserve(first, view.t)
    view.t += 1
    async with db.session() as s:  # the other call is over: one ready seat, covered by nothing
        await s.execute(update(Attempt).where(Attempt.id != first).values(state="ended"))
    assert await engine.tick() == 1, "the ready seat is uncovered: the reserved call is not waiting for it"


async def test_the_fit_reads_the_campaigns_own_connected_calls(db, clock):
    """Talk: seconds with a collector of connected calls; ring: originate -> answer of answered
    ones; only this campaign's, within the window."""
    await add_case(db, clock, "K-1")
    mine, other = await new_campaign(db, clock, "mine"), await new_campaign(db, clock, "other")
    now = clock()
    async with db.session() as s:
        phone = (await repo.get_case(s, "K-1")).phones[0]
        for n, (campaign_id, bridged) in enumerate(((mine, 30.0), (mine, None), (other, 99.0))):
            s.add(Attempt(id=uuid.uuid4().hex, case_id="K-1", phone_id=phone.id, number=phone.number, state="ended",
                          created_at=now - timedelta(minutes=n), originated_at=now - timedelta(minutes=n),
                          answered_at=now - timedelta(minutes=n) + timedelta(seconds=3 + n),
                          bridged_seconds=bridged, campaign_id=campaign_id))
        s.add(Attempt(id=uuid.uuid4().hex, case_id="K-1", phone_id=phone.id, number=phone.number, state="ended",
                      created_at=now - timedelta(days=40), originated_at=now - timedelta(days=40),
                      answered_at=now - timedelta(days=40), bridged_seconds=500.0, campaign_id=mine))
    async with db.session() as s:
        talk, ring = await campaign_store.samples(s, mine, now - timedelta(days=30))
    assert talk == [30.0] and sorted(ring) == [3.0, 4.0]
