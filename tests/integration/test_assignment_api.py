"""Assignment as the floor uses it: a supervisor deals out a batch by a rule, the workload
view shows the result, each collector then sees only their own cases and a team lead only
their team's; a lead cannot reach beyond their team; a case moved by hand is audited."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from cases.batches import BatchImporter
from people.roles import Role
from storage.models import AuditEvent
from tests.batch_files import csv_bytes, good_row
from tests.console_kit import PASSWORD, TEAM, user_of


@pytest.fixture
async def floor(db, clock, accounts):
    """Collectors 1-3 in team north, collector4 in team south, and batch B2026-11 of 30 cases."""
    await accounts.add_team("south", by="test")
    ids = {"collector1": (await accounts.user("collector1")).id}
    for name, team in (("collector2", TEAM), ("collector3", TEAM), ("collector4", "south")):
        user = await accounts.add_user(username=name, display_name=name, role="collector", password=PASSWORD,
                                       by="test", team=team, locale="en")
        ids[name] = user.id
    rows = [good_row(n) for n in range(1, 31)]
    for n, row in enumerate(rows, start=1):
        row[8] = "500.00" if n % 2 else "50000.00"  # half small, half large
    importer = BatchImporter(db, clock)
    data = csv_bytes(rows)
    result = await importer.run(await importer.start(client="cu", filename="b.csv", data=data, by="t"), data)
    assert result.imported == 30
    return ids


async def test_a_supervisor_deals_a_batch_evenly_and_each_collector_sees_their_own(running, db, floor):
    supervisor = await running.browser(Role.SUPERVISOR)
    north = [floor["collector1"], floor["collector2"], floor["collector3"]]
    resp = await supervisor.post("/api/assignments", json={"rule": "amount_band", "batch_id": 1,
                                                           "collector_ids": north})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["placed"] == 30 and sorted(body["per_collector"].values()) == [10, 10, 10]
    load = {w["username"]: w["open_cases"] for w in await (await supervisor.get("/api/workload")).json()}
    assert load == {"collector1": 10, "collector2": 10, "collector3": 10, "collector4": 0}
    collector = await running.browser(Role.COLLECTOR)
    mine = await (await collector.get("/api/cases")).json()
    assert len(mine) == 10 and {c["collector_id"] for c in mine} == {floor["collector1"]}
    assert sum(c["arrears_cents"] == 50_000 for c in mine) == 5, "a like share of each band"
    lead = await running.browser(Role.TEAM_LEAD)
    assert len(await (await lead.get("/api/cases")).json()) == 30  # C-1 is nobody's
    again = await (await supervisor.post("/api/assignments", json={"rule": "round_robin", "batch_id": 1})).json()
    assert again["placed"] == 0, "only unassigned cases unless told otherwise"


async def test_routes_by_band_and_the_unrouted_left_alone(running, db, floor):
    supervisor = await running.browser(Role.SUPERVISOR)
    body = await (await supervisor.post("/api/assignments", json={
        "rule": "amount_band", "batch_id": 1, "routes": {">=100k": [floor["collector4"]],
                                                         "20k-100k": [floor["collector2"]]}})).json()
    assert body["placed"] == 15 and body["per_collector"] == {str(floor["collector2"]): 15}
    assert set(body["unrouted"].values()) == {"<1k"}


async def test_a_team_lead_stays_within_their_team(running, db, floor):
    lead = await running.browser(Role.TEAM_LEAD)
    supervisor = await running.browser(Role.SUPERVISOR)
    await supervisor.post("/api/assignments", json={"rule": "round_robin", "batch_id": 1,
                                                    "collector_ids": [floor["collector1"]]})
    refused = await lead.post("/api/assignments", json={"rule": "round_robin", "batch_id": 1, "only_unassigned": False,
                                                        "collector_ids": [floor["collector4"]]})
    assert refused.status == 400 and "of your team" in await refused.text()
    assert [w["username"] for w in await (await lead.get("/api/workload")).json()] == [
        "collector1", "collector2", "collector3"]
    moved = await lead.post("/api/cases/cu-AC000001/assignment", json={"collector_id": floor["collector2"],
                                                                       "why": "language"})
    assert moved.status == 200
    assert (await lead.post("/api/cases/cu-AC000002/assignment", json={"collector_id": floor["collector4"]})
            ).status == 400
    assert (await lead.post("/api/cases/C-1/assignment", json={"collector_id": floor["collector2"]})).status == 404
    collector = await running.browser(Role.COLLECTOR)
    assert (await collector.get("/api/workload")).status == 403
    async with db.session() as s:
        [event] = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "case.reassigned"))).all()
        assert event.actor == user_of(Role.TEAM_LEAD) and event.detail["why"] == "language"


@pytest.mark.parametrize("path, body", [
    ("/api/assignments", {"rule": "round_robin", "batch_id": 10**20}),
    ("/api/assignments", {"rule": "round_robin", "batch_id": 1, "collector_ids": [2**31]}),
    ("/api/cases/C-1/assignment", {"collector_id": 10**20}),
    ("/api/cases/C-1/assignment", {"team_id": -1}),
])
async def test_an_id_no_row_can_have_is_a_clear_400_not_a_database_error(running, db, floor, path, body):
    supervisor = await running.browser(Role.SUPERVISOR)
    resp = await supervisor.post(path, json=body)
    assert resp.status == 400, await resp.text()
