"""The registers on a real database, over the console's API and its pages, and the purge of
field-visit data six months on: letters, SMS and lawyer letters registered with their
replies (a refusal stores nothing); a visit from its request to its report with its photo
and recording kept as private files; the purge of a visit older than six months (its files
gone, its row a tombstone, its ledger entry present, `recordings verify` still OK) while a
younger visit stays whole; `dunline visits purge` from the command line."""
from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from cases import registers_store as store
from cases.registers import RETENTION, RegisterRefused
from cases.visit_purge import purge_visits
from people.roles import Permission, Role, may
from recorder import ledger_store
from recorder.archive import FilesystemArchive
from recorder.verify import verify_archive
from storage import repositories as repo
from storage.models import AuditEvent, Case, Phone
from storage.registers import CorrespondenceItem, FieldVisit, VisitAttachment
from tests.console_kit import PASSWORD, TEAM, console, user_of
from tests.db_snapshot import snapshot

QUIET = ("login_attempts", "user_sessions")  # what signing in and being seen touch
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 40
WAV = b"RIFF\x24\x10\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(range(200)) * 50
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
REPORT = "met the debtor at home with both of us present; agreed to pay 500 yuan on Friday"
ADDRESS = "北京市朝阳区建国路 88 号 3 单元 501"


def makes_visits(role: str) -> bool:
    return may(role, Permission.VISIT_REQUEST)


@pytest.fixture
async def mine(db, clock, accounts):
    """Case C-1 assigned to collector1 (team north) with a work-unit phone; C-2 of collector2;
    a second collector for a visit's team."""
    collector = await accounts.user(user_of(Role.COLLECTOR))
    other = await accounts.add_user(username="collector2", display_name="another collector", role="collector",
                                    password=PASSWORD, by="test", team=TEAM, locale="en")
    async with db.session() as s:
        case = await repo.get_case(s, "C-1")
        case.collector_id, case.team_id = collector.id, collector.team_id
        s.add(Phone(case_id="C-1", number="13911112222", kind="third_party", relation="work"))
        await repo.add_case(s, Case(id="C-2", client="cu", debtor_name="Li", created_at=clock(),
                                    collector_id=other.id, team_id=other.team_id), [repo.NewPhone("13800000009")])
    return collector


@pytest.fixture
async def running(db, accounts, mine, tmp_path):
    async with console(db, accounts, visits_dir=tmp_path / "visits") as app:
        yield app


async def ok(resp: aiohttp.ClientResponse, status: int = 200) -> dict:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def problem(resp: aiohttp.ClientResponse, key: str) -> None:
    body = await resp.json()
    assert (resp.status, body.get("problem")) == (400, key), body


async def templates_in_use(running) -> dict[str, int]:
    """A letter and an SMS template approved (each by someone other than its author), a draft."""
    supervisor, compliance = await running.browser(Role.SUPERVISOR), await running.browser(Role.COMPLIANCE)
    letter = await ok(await supervisor.post("/api/templates", json={
        "kind": "letter", "name": "first notice", "body": "尊敬的客户：您的话费已逾期，请于七日内缴清。"}), 201)
    await problem(await supervisor.post(f"/api/templates/{letter['id']}/approve"), "approve_own")
    assert (await ok(await compliance.post(f"/api/templates/{letter['id']}/approve")))["usable"]
    sms = await ok(await compliance.post("/api/templates", json={
        "kind": "sms", "name": "reminder", "body": "【催缴】您的话费已逾期，请尽快缴清。"}), 201)
    await ok(await supervisor.post(f"/api/templates/{sms['id']}/approve"))
    draft = await ok(await compliance.post("/api/templates", json={
        "kind": "letter", "name": "draft", "body": "a letter nobody approved yet"}), 201)
    return {"letter": letter["id"], "sms": sms["id"], "draft": draft["id"]}


def letter(template_id: int, **changes) -> dict:
    return {"template_id": template_id, "recipient_name": "王芳", "relation": "debtor",
            "channel": "registered_mail", "address": ADDRESS, **changes}


async def test_items_are_registered_with_their_replies_and_every_refusal_stores_nothing(running, db, clock):
    ids = await templates_in_use(running)
    clock.advance(2 * 86400)
    collector = await running.browser(Role.COLLECTOR)
    refusals = [
        (letter(ids["draft"]), "template_unapproved"),
        (letter(ids["letter"], relation="employer"), "recipient_employer"),
        (letter(ids["letter"], relation="work_unit"), "recipient_employer"),
        (letter(ids["letter"], relation="police"), "recipient_authority"),
        (letter(ids["letter"], channel="fax"), "channel_fax"),
        (letter(ids["letter"], channel="postcard"), "channel_postcard"),
        (letter(ids["letter"], channel="sms", address="13800000001"), "channel_kind"),
        (letter(ids["sms"], channel="sms", address="13911112222"), "recipient_employer"),  # the work unit's phone
        (letter(ids["letter"], sent_at="2026-11-30T09:00"), "time"),
        (letter(ids["letter"], sent_at=(clock() + timedelta(hours=1)).isoformat()), "future"),
        (letter(987654), "template"),
        (letter(True), "template"),
        (letter(2 ** 70), "template"),
    ]
    before = await snapshot(db, skip=QUIET)
    for body, key in refusals:
        await problem(await collector.post("/api/cases/C-1/correspondence", json=body), key)
    assert await snapshot(db, skip=QUIET) == before, "a refusal stores nothing, not even an audit event"
    assert (await collector.post("/api/cases/C-2/correspondence", json=letter(ids["letter"]))).status == 404

    sent = await ok(await collector.post("/api/cases/C-1/correspondence", json=letter(
        ids["letter"], sent_at=(clock() - timedelta(days=1)).isoformat())), 201)
    sms = await ok(await collector.post("/api/cases/C-1/correspondence", json=letter(
        ids["sms"], channel="sms", address="+86 138 0000 0001", relation="family", recipient_name="王强")), 201)
    assert sms["address"] == "138****0001", "an SMS's number is masked like any phone number"
    replied = await ok(await collector.post(f"/api/correspondence/{sent['id']}/reply",
                                            json={"reply": "债务人来电，承诺月底还款"}))
    assert replied["reply_at"] == clock().isoformat()
    await problem(await collector.post(f"/api/correspondence/{sent['id']}/reply", json={"reply": "again"}),
                  "reply_twice")
    listed = await ok(await (await running.browser(Role.SUPERVISOR)).get("/api/cases/C-1/correspondence"))
    assert [(i["id"], i["kind"], i["channel"], i["relation"], i["template_name"]) for i in listed] == [
        (sms["id"], "sms", "sms", "family", "reminder"), (sent["id"], "letter", "registered_mail", "debtor",
                                                          "first notice")]
    assert listed[0]["address"] == "13800000001", "the supervisor reads numbers in full"
    assert listed[1]["reply"] == "债务人来电，承诺月底还款"

    supervisor = await running.browser(Role.SUPERVISOR)
    await problem(await supervisor.post(f"/api/templates/{ids['letter']}/retire", json={"reason": "no"}), "reason")
    await ok(await supervisor.post(f"/api/templates/{ids['letter']}/retire", json={"reason": "new wording agreed"}))
    await problem(await collector.post("/api/cases/C-1/correspondence", json=letter(ids["letter"])),
                  "template_retired")
    assert (await collector.post("/api/templates", json={"kind": "sms", "name": "x", "body": "y"})).status == 403
    assert (await (await running.browser(Role.QC)).post("/api/cases/C-1/correspondence",
                                                        json=letter(ids["sms"]))).status == 403
    async with db.session() as s:
        actions = [e.action for e in (await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()]
        assert (await s.scalar(select(CorrespondenceItem).where(CorrespondenceItem.id == sent["id"]))).reply
    assert actions.count("correspondence.registered") == 2 and "correspondence.reply_registered" in actions
    assert {"template.created", "template.approved", "template.retired"} <= set(actions)


async def upload(browser, visit_id: int, kind: str, data: bytes, name: str) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await browser.post(f"/api/visits/{visit_id}/attachments?kind={kind}", data=form)


def private(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_visit_from_its_request_to_its_report_its_evidence_private_files(running, db, clock, tmp_path):
    collector, partner = await running.browser(Role.COLLECTOR), await running.browser(username="collector2")
    supervisor = await running.browser(Role.SUPERVISOR)
    body = {"reason": "no answer on any phone for two weeks", "address": ADDRESS, "team": ["collector1", "collector2"]}
    for team, key in ((["collector1"], "team_size"), (["collector1", "collector1"], "team_same"),
                      (["collector1", "qc1"], "team_role"), (["collector1", "nobody"], "team_unknown")):
        await problem(await collector.post("/api/cases/C-1/visits", json={**body, "team": team}), key)
    assert (await supervisor.post("/api/cases/C-1/visits", json=body)).status == 403, "a supervisor decides, not asks"
    visit = await ok(await collector.post("/api/cases/C-1/visits", json=body), 201)
    vid = visit["id"]
    assert visit["state"] == "requested"
    assert visit["purge_due_at"] == (clock() + RETENTION).isoformat()
    await problem(await collector.post(f"/api/visits/{vid}/steps", json={"step": "departed"}), "state")
    assert (await collector.post(f"/api/visits/{vid}/decision", json={"decision": "approve"})).status == 403
    await problem(await supervisor.post(f"/api/visits/{vid}/decision", json={"decision": "refuse"}), "reason")
    assert (await ok(await supervisor.post(f"/api/visits/{vid}/decision",
                                           json={"decision": "approve", "note": "go in the morning"})))["state"] \
        == "approved"

    start = clock()
    clock.advance(1800)
    await ok(await partner.post(f"/api/visits/{vid}/steps", json={"step": "departed"}))  # on the team: reaches it
    await problem(await collector.post(f"/api/visits/{vid}/steps", json={
        "step": "arrived", "at": (start - timedelta(minutes=1)).isoformat()}), "step_order")
    clock.advance(1800)
    await ok(await collector.post(f"/api/visits/{vid}/steps", json={"step": "arrived"}))
    await problem(await collector.post(f"/api/visits/{vid}/report", json={"report": REPORT}), "state")

    photo = await ok(await upload(partner, vid, "photo", JPEG, "门口.jpg"), 201)
    before_refusals = sorted((tmp_path / "visits").rglob("*"))
    await problem(await upload(collector, vid, "recording", PNG, "fake.wav"), "attachment_type")
    await problem(await upload(collector, vid, "video", JPEG, "x.jpg"), "attachment_kind")
    assert sorted((tmp_path / "visits").rglob("*")) == before_refusals, "a refused upload leaves no file"
    recording = await ok(await upload(collector, vid, "recording", WAV, "talk.wav"), 201)
    assert (photo["sha256"], photo["size"], photo["media_type"]) == (hashlib.sha256(JPEG).hexdigest(), len(JPEG),
                                                                      "image/jpeg")
    clock.advance(1800)
    await ok(await collector.post(f"/api/visits/{vid}/steps", json={"step": "left"}))
    clock.advance(1800)
    back = await ok(await collector.post(f"/api/visits/{vid}/steps", json={"step": "returned"}))
    assert back["purge_due_at"] == (clock() + RETENTION).isoformat(), "kept 183 days from the return"
    await problem(await collector.post(f"/api/visits/{vid}/report", json={"report": "short"}), "report")
    done = await ok(await collector.post(f"/api/visits/{vid}/report", json={"report": REPORT}))
    assert done["state"] == "reported"
    await problem(await upload(collector, vid, "photo", JPEG, "late.jpg"), "state")

    async with db.session() as s:
        rows = (await s.scalars(select(VisitAttachment).order_by(VisitAttachment.id))).all()
    files = [tmp_path / "visits" / r.path for r in rows]
    assert [f.read_bytes() for f in files] == [JPEG, WAV]
    assert {private(f) for f in files} == {0o440}, "evidence: read-only for its owner and group, nothing for others"
    assert private(tmp_path / "visits") == private(tmp_path / "visits" / str(vid)) == 0o750
    assert list((tmp_path / "visits" / ".incoming").iterdir()) == [], "nothing left half-uploaded"

    qc = await running.browser(Role.QC)
    shown = await ok(await qc.get(f"/api/visits/{vid}"))
    assert shown["team"] == ["collector1", "collector2"] and shown["report"] == REPORT
    assert [a["kind"] for a in shown["attachments"]] == ["photo", "recording"]
    resp = await qc.get(photo["href"])
    assert resp.status == 200 and await resp.read() == JPEG and resp.headers["Content-Type"] == "image/jpeg"
    assert (await qc.post(f"/api/visits/{vid}/steps", json={"step": "left"})).status == 403
    assert (await (await running.browser(Role.TEAM_LEAD)).get(f"/api/visits/{vid}")).status == 200
    outsider = await running.browser(Role.COLLECTOR)
    assert (await outsider.get(f"/api/visits/{vid}/attachments/{recording['id']}")).status == 200
    async with db.session() as s:
        events = (await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    actions = [e.action for e in events]
    for action in ("visit.requested", "visit.approved", "visit.departed", "visit.arrived", "visit.left",
                   "visit.returned", "visit.reported", "visit.attachment_added", "visit.attachment_read"):
        assert action in actions, action
    assert not any(REPORT in str(e.detail) or ADDRESS in str(e.detail) for e in events), \
        "the audit keeps no copy of what the purge will blank"


async def test_a_visit_is_reached_through_its_case_or_its_team_only(running, db, clock):
    collector2 = await running.browser(username="collector2")
    visit = await ok(await collector2.post("/api/cases/C-2/visits", json={
        "reason": "needs a visit", "address": ADDRESS, "team": ["collector2", "teamlead1"]}), 201)
    collector1 = await running.browser(Role.COLLECTOR)
    assert (await collector1.get(f"/api/visits/{visit['id']}")).status == 404
    assert (await collector1.post(f"/api/visits/{visit['id']}/steps", json={"step": "departed"})).status == 404
    assert (await collector1.get("/api/cases/C-2/visits")).status == 404
    assert (await ok(await (await running.browser(Role.TEAM_LEAD)).get(f"/api/visits/{visit['id']}")))["id"] \
        == visit["id"]


# -- the purge -------------------------------------------------------------------------

async def chunks(data: bytes):
    yield data[:100]
    yield data[100:]


async def made_visit(db, clock, visits_dir: Path, case_id: str, *, report: bool = True) -> int:
    """A visit made and reported through the store, at the clock's time (an hour in the field)."""
    from storage.people import User

    async with db.session() as s:
        users = {u.username: u.id for u in (await s.scalars(select(User))).all()}
    reach = store.VisitReach(repo.ALL_CASES, users["collector1"])
    visit = await store.request_visit(db, clock, case_id, reason="no answer on any phone", address=ADDRESS,
                                      team=["collector1", "collector2"], by="collector1", makes_visits=makes_visits)
    await store.decide_visit(db, clock, visit.id, True, "", by="supervisor1", reach=reach)
    for step in ("departed", "arrived"):
        clock.advance(600)
        await store.record_step(db, clock, visit.id, step, None, by="collector1", reach=reach)
    for kind, data, name in (("photo", JPEG, "door.jpg"), ("recording", WAV, "talk.wav")):
        staged = await store.stage_upload(chunks(data), visits_dir)
        await store.add_attachment(db, clock, visits_dir, visit.id, kind, name, staged, by="collector1", reach=reach)
    for step in ("left", "returned"):
        clock.advance(600)
        await store.record_step(db, clock, visit.id, step, None, by="collector1", reach=reach)
    if report:
        await store.submit_report(db, clock, visit.id, REPORT, by="collector1", reach=reach)
    return visit.id


async def visit_state(db, visit_id: int) -> tuple[FieldVisit, list[VisitAttachment]]:
    async with db.session() as s:
        row = await s.get(FieldVisit, visit_id)
        attachments = (await s.scalars(select(VisitAttachment).where(VisitAttachment.visit_id == visit_id)
                                       .order_by(VisitAttachment.id))).all()
        return row, list(attachments)


async def test_visit_data_older_than_six_months_is_purged_into_the_ledger_and_verify_stays_ok(
        db, clock, accounts, mine, ledger, signer, tmp_path):
    from tests.integration.test_verify_archive import ingest_calls

    archive, _ = await ingest_calls(db, clock, ledger, tmp_path, n=2)
    visits_dir = tmp_path / "visits"
    old = await made_visit(db, clock, visits_dir, "C-1")
    returned = (await visit_state(db, old))[0].returned_at
    clock.advance(86400 * 100)
    young = await made_visit(db, clock, visits_dir, "C-2", report=False)
    young_files = sorted((visits_dir / str(young)).iterdir())
    old_row, old_attachments = await visit_state(db, old)
    assert old_row.purge_due_at == returned + timedelta(days=183)

    clock.set(returned + timedelta(days=183) - timedelta(microseconds=1))
    early = await purge_visits(db, ledger, clock, visits_dir, by="ops.zhao")
    assert early.purged == [] and (visits_dir / str(old)).is_dir(), "not a moment before its 183 days"
    clock.set(returned + timedelta(days=183))
    entries_before = len(await _entries(db))
    report = await purge_visits(db, ledger, clock, visits_dir, by="ops.zhao")
    assert [(v.visit_id, v.state) for v in report.purged] == [(old, "reported")] and report.failed == []
    assert "purged visit" in report.render()

    assert not (visits_dir / str(old)).exists(), "its photos and recordings are gone"
    row, attachments = await visit_state(db, old)
    assert (row.state, row.purged_at, row.purged_by) == ("purged", clock(), "ops.zhao")
    assert (row.reason, row.address, row.report, row.decision_note) == (None, None, None, None)
    assert (row.requested_by, row.returned_at, row.member_a_id) == ("collector1", returned, old_row.member_a_id), \
        "the tombstone keeps who, when and the team"
    assert [(a.kind, a.sha256, a.size, a.path, a.file_name, a.purged_at) for a in attachments] == [
        (a.kind, a.sha256, a.size, None, None, clock()) for a in old_attachments]

    entries = await _entries(db)
    assert len(entries) == entries_before + 1
    entry = entries[-1]
    assert (entry.action, entry.subject, entry.actor) == ("purge", f"visit:{old}", "ops.zhao")
    detail = entry.detail_map()
    assert detail["case_id"] == "C-1" and detail["retention_days"] == 183 and detail["state"] == "reported"
    assert [(f["kind"], f["sha256"], f["size"], f["found"], f["intact"]) for f in detail["files"]] == [
        ("photo", hashlib.sha256(JPEG).hexdigest(), len(JPEG), True, True),
        ("recording", hashlib.sha256(WAV).hexdigest(), len(WAV), True, True)]
    assert detail["counts"] == {"photos": 1, "recordings": 1, "bytes": len(JPEG) + len(WAV), "found": 2}
    assert set(detail["blanked"]) == {"reason", "address", "report"}
    assert REPORT not in entry.detail and ADDRESS not in entry.detail, "the ledger says what went, not what it said"
    async with db.session() as s:
        assert "visit.purged" in [e.action for e in (await s.scalars(select(AuditEvent))).all()]

    young_row, young_attachments = await visit_state(db, young)
    assert young_row.purged_at is None and young_row.report is None and young_row.address == ADDRESS
    assert sorted((visits_dir / str(young)).iterdir()) == young_files and all(a.path for a in young_attachments)

    await ledger.checkpoint()
    verified = await verify_archive(db, archive, signer.public_key)
    assert verified.ok, verified.render()

    again = await purge_visits(db, ledger, clock, visits_dir, by="ops.zhao")
    assert again.purged == [] and len(await _entries(db)) == entries_before + 1, "purged once, ledgered once"
    reach = store.VisitReach(repo.ALL_CASES)
    with pytest.raises(RegisterRefused) as refused:
        await store.record_step(db, clock, old, "departed", None, by="collector1", reach=reach)
    assert refused.value.key == "purged"

    clock.set(young_row.purge_due_at)
    assert [v.visit_id for v in (await purge_visits(db, ledger, clock, visits_dir, by="ops.zhao")).purged] == [young]


async def _entries(db):
    async with db.session() as s:
        return list(await ledger_store.entries(s))


async def test_a_visit_that_never_happened_goes_183_days_after_its_request(db, clock, accounts, mine, ledger,
                                                                            tmp_path):
    visit = await store.request_visit(db, clock, "C-1", reason="no answer on any phone", address=ADDRESS,
                                      team=["collector1", "collector2"], by="collector1", makes_visits=makes_visits)
    await store.decide_visit(db, clock, visit.id, False, "not worth the trip", by="supervisor1",
                             reach=store.VisitReach(repo.ALL_CASES))
    clock.set(visit.requested_at + timedelta(days=183))
    report = await purge_visits(db, ledger, clock, tmp_path / "visits", by="ops.zhao")
    assert [(v.visit_id, v.state, v.files) for v in report.purged] == [(visit.id, "refused", ())]
    row, _ = await visit_state(db, visit.id)
    assert row.decision_note is None and row.reason is None and row.state == "purged"


async def test_a_purge_finishes_what_a_crash_left_and_a_dry_run_changes_nothing(db, clock, accounts, mine, ledger,
                                                                                tmp_path, monkeypatch):
    visits_dir = tmp_path / "visits"
    old = await made_visit(db, clock, visits_dir, "C-1")
    clock.advance(86400 * 200)
    before = await snapshot(db)
    dry = await purge_visits(db, ledger, clock, visits_dir, by="ops.zhao", dry_run=True)
    assert [v.visit_id for v in dry.purged] == [old] and "would purge" in dry.render()
    assert await snapshot(db) == before and (visits_dir / str(old)).is_dir()

    import cases.visit_purge as purge_module

    real = purge_module._delete_dirs  # the transaction committed, then the process died before deleting
    with monkeypatch.context() as patched:
        patched.setattr(purge_module, "_delete_dirs",
                        lambda paths: ([], []) if paths and paths[0].name == str(old) else real(paths))
        await purge_visits(db, ledger, clock, visits_dir, by="ops.zhao")
    assert (await visit_state(db, old))[0].purged_at is not None and (visits_dir / str(old)).is_dir()
    stray = visits_dir / "999"
    stray.mkdir(mode=0o750)
    (stray / "x.jpg").write_bytes(JPEG)
    part = visits_dir / ".incoming" / "cut-off.part"
    part.write_bytes(b"half")
    os.utime(part, (0, 0))
    report = await purge_visits(db, ledger, clock, visits_dir, by="ops.zhao")
    assert report.purged == [] and sorted(report.leftovers) == sorted([str(visits_dir / str(old)), str(stray),
                                                                       str(part)])
    assert not (visits_dir / str(old)).exists() and not stray.exists() and not part.exists()


async def test_visit_files_are_not_readable_by_another_local_user(db, clock, accounts, mine, tmp_path):
    from tests.integration.test_files_at_rest import as_nobody

    if os.geteuid() != 0:
        pytest.skip("reading as another user needs root to switch to it")
    old_umask = os.umask(0o022)  # a careless umask: the modes are set by the code
    try:
        base = tmp_path / "open"
        base.mkdir()
        os.chmod(tmp_path, 0o711)
        os.chmod(base, 0o711)
        await made_visit(db, clock, base / "visits", "C-1", report=False)
    finally:
        os.umask(old_umask)
    files = [p for p in (base / "visits").rglob("*") if p.is_file()]
    assert len(files) == 2
    exposed = {str(p): oct(private(p)) for p in (base / "visits").rglob("*") if p.stat().st_mode & 0o007}
    assert exposed == {} and not private(base / "visits") & 0o007
    for path in files:
        assert as_nobody("cat", str(path)).returncode != 0
    assert as_nobody("ls", str(base / "visits")).returncode != 0


# -- the command -----------------------------------------------------------------------

async def test_dunline_visits_purge_from_the_command_line(db, accounts, mine, ledger, signer, tmp_path, monkeypatch,
                                                          capsys):
    from dunline.cli import main
    from storage.clock import ManualClock
    from tests.conftest import write_signing_key

    visits_dir = tmp_path / "visits"
    old = await made_visit(db, ManualClock(datetime(2020, 1, 1, tzinfo=timezone.utc)), visits_dir, "C-1")
    young = await made_visit(db, ManualClock(datetime(2099, 1, 1, tzinfo=timezone.utc)), visits_dir, "C-2")
    monkeypatch.delenv("DUNLINE_CONFIG", raising=False)
    monkeypatch.setenv("DUNLINE_DATABASE_URL", db.url)
    monkeypatch.setenv("DUNLINE_RECORDING_ARCHIVE_DIR", str(tmp_path / "archive"))
    monkeypatch.setenv("DUNLINE_RECORDING_STORE", "fs")
    monkeypatch.setenv("DUNLINE_VISITS_DIR", str(visits_dir))
    write_signing_key(signer, tmp_path / "ledger-key.pem")

    async def run(*argv: str) -> tuple[int, str, str]:
        status = await asyncio.to_thread(main, ["visits", "purge", *argv])
        out = capsys.readouterr()
        return status, out.out, out.err

    status, _out, err = await run()
    assert status == 2 and "--by" in err
    status, out, _ = await run("--by", "ops.zhao", "--dry-run")
    assert status == 0 and f"would purge visit {old} (case C-1" in out and (visits_dir / str(old)).is_dir()
    status, out, _ = await run("--by", "ops.zhao")
    assert status == 0 and f"purged visit {old} (case C-1, reported" in out and "purged 1 visits" in out
    assert not (visits_dir / str(old)).exists() and (visits_dir / str(young)).is_dir()
    entries = await _entries(db)
    assert [(e.action, e.subject, e.actor) for e in entries] == [("purge", f"visit:{old}", "ops.zhao")]
    verified = await verify_archive(db, FilesystemArchive(tmp_path / "archive"), signer.public_key)
    assert verified.ok and verified.checkpoints == 1 and verified.witnesses == 1, verified.render()


async def test_the_service_purges_what_is_due_by_itself(db, clock, accounts, mine, ledger, tmp_path):
    from dunline.service import Service
    from dunline.settings import load_settings

    visits_dir = tmp_path / "visits"
    old = await made_visit(db, clock, visits_dir, "C-1")
    clock.advance(86400 * 184)
    settings = load_settings(env={}, overrides={
        "database": {"url": db.url}, "recording": {"archive_dir": str(tmp_path / "archive")},
        "visits": {"dir": str(visits_dir), "purge_interval_s": 0.05}, "watchdog": {"enabled": False}})
    service = Service(settings, clock=clock)
    service._ledger = ledger  # what start() opens; the loop alone is under test here
    task = asyncio.create_task(service._purge_visits_periodically(settings.visits.purge_interval_s))
    try:
        for _ in range(200):
            if (await visit_state(db, old))[0].purged_at is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.db.close()
    assert (await visit_state(db, old))[0].purged_by == "dunline-retention"
    assert [(e.subject, e.actor) for e in await _entries(db)][-1] == (f"visit:{old}", "dunline-retention")
    assert not (visits_dir / str(old)).exists()
