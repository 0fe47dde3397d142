"""The registers' rules without I/O (cases/registers.py): templates only once approved by
someone else and never once retired; never to the employer, the authorities or the
residents' committee; never by fax or postcard; a visit's team of two, its steps in order,
its report with its evidence; its data due for purge exactly 183 days after the return."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.registers import (MAX_ATTACHMENT_BYTES, MOVES, PROBLEMS, RETENTION, STEPS, Member, RegisterRefused,
                             TemplateFacts, VisitFacts, VisitState, check_approval, check_attachment, check_case,
                             check_decision, check_item, check_reply, check_report, check_request, check_retirement,
                             check_step, check_team, check_template, due_for_purge, file_name_of, moment_of,
                             purge_due_at, team_of)
from storage.clock import ManualClock

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
APPROVED = TemplateFacts(1, "letter", "first notice", "compliance1", NOW - timedelta(days=10), None)
SMS = TemplateFacts(2, "sms", "reminder", "compliance1", NOW - timedelta(days=10), None)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 50
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 50


def refused(key: str, work, *args, **kwargs) -> RegisterRefused:
    with pytest.raises(RegisterRefused) as caught:
        work(*args, **kwargs)
    assert caught.value.key == key, (caught.value.key, str(caught.value))
    return caught.value


def item(template: TemplateFacts = APPROVED, **changes):
    fields = {"recipient_name": "王芳", "relation": "debtor", "channel": "registered_mail",
              "address": "北京市朝阳区建国路 88 号 3 单元 501", "sent_at": None, "now": NOW, **changes}
    return check_item(template, **fields)


# -- templates -------------------------------------------------------------------------

def test_a_template_has_a_kind_a_name_and_a_text():
    new = check_template("lawyer_letter", " 律师函一 ", "尊敬的客户：您的欠费已逾期，请于七日内缴清。")
    assert (new.kind.value, new.name) == ("lawyer_letter", "律师函一")
    refused("kind", check_template, "fax_cover", "x1", "a long enough body")
    refused("name", check_template, "letter", "x", "a long enough body")
    refused("body", check_template, "letter", "notice", "short")
    refused("sms_body", check_template, "sms", "reminder", "字" * 501)
    refused("body", check_template, "letter", "notice", "a long enough body\x00")


def test_a_template_is_approved_once_by_someone_other_than_its_author_and_never_once_retired():
    draft = TemplateFacts(3, "letter", "draft", "supervisor1", None, None)
    check_approval(draft, "compliance1")
    assert refused("approve_own", check_approval, draft, "supervisor1").values == {"by": "supervisor1"}
    refused("approved_already", check_approval, APPROVED, "supervisor1")
    refused("approve_retired", check_approval, replace(draft, retired_at=NOW), "compliance1")
    assert check_retirement(APPROVED, " outdated wording ") == "outdated wording"
    refused("reason", check_retirement, APPROVED, "no")
    refused("retired_already", check_retirement, replace(APPROVED, retired_at=NOW), "outdated wording")


def test_only_an_approved_template_not_retired_and_approved_before_the_sending_is_used():
    assert item().template_id == 1
    refused("template_unapproved", item, replace(APPROVED, approved_at=None))
    retired = refused("template_retired", item, replace(APPROVED, retired_at=NOW - timedelta(days=1)))
    assert "retired" in str(retired)
    refused("template_retired", item, replace(APPROVED, retired_at=NOW - timedelta(days=1)),
            sent_at=NOW - timedelta(days=5))  # retired since: used no more either
    refused("before_approval", item, sent_at=NOW - timedelta(days=11))


# -- to whom, how ------------------------------------------------------------------------

@pytest.mark.parametrize("relation, key", [
    ("employer", "recipient_employer"), ("work", "recipient_employer"), (" Work_Unit ", "recipient_employer"),
    ("court", "recipient_authority"), ("police", "recipient_authority"), ("procuratorate", "recipient_authority"),
    ("residents_committee", "recipient_community"), ("village_committee", "recipient_community"),
    ("landlord", "relation"), ("", "relation"), (None, "relation"),
])
def test_never_to_the_employer_the_authorities_or_the_residents_committee(relation, key):
    refused(key, item, relation=relation)


@pytest.mark.parametrize("relation", ["debtor", "family", "third_party"])
def test_to_the_debtor_their_family_or_a_third_party(relation):
    assert item(relation=relation).relation.value == relation


@pytest.mark.parametrize("channel, key", [("fax", "channel_fax"), (" FAX ", "channel_fax"),
                                          ("postcard", "channel_postcard"), ("Postcard", "channel_postcard"),
                                          ("pigeon", "channel"), (3, "channel")])
def test_never_by_fax_or_on_a_postcard(channel, key):
    refused(key, item, channel=channel)


def test_fax_is_refused_even_with_an_unapproved_template():
    refused("channel_fax", item, replace(APPROVED, approved_at=None), channel="fax")


def test_each_kind_goes_by_its_own_channels_to_a_fitting_address():
    refused("channel_kind", item, channel="sms", address="13800000001")
    refused("channel_kind", item, SMS, channel="post")
    assert item(SMS, channel="sms", address="+86 138-0000-0001").address == "13800000001"
    refused("mobile", item, SMS, channel="sms", address="010-12345678")  # a landline takes no SMS
    refused("mobile", item, SMS, channel="sms", address="not a number")
    assert item(channel="email", address="wang.fang@example.cn").address == "wang.fang@example.cn"
    refused("email", item, channel="email", address="wang.fang@example")
    refused("address", item, channel="courier", address="北京")
    assert item(channel="in_person").channel.value == "in_person"
    refused("recipient_name", item, recipient_name=" ")


def test_when_it_was_sent_not_in_the_future_its_offset_given():
    assert item(sent_at=NOW - timedelta(hours=1)).sent_at == NOW - timedelta(hours=1)
    assert item().sent_at == NOW
    refused("future", item, sent_at=NOW + timedelta(minutes=1))
    shanghai = ZoneInfo("Asia/Shanghai")
    assert moment_of("sent_at", "2026-12-01T10:00", naive_zone=shanghai) == NOW
    assert moment_of("sent_at", "2026-12-01T02:00Z") == NOW
    assert moment_of("sent_at", "") is None
    refused("time", moment_of, "sent_at", "2026-12-01T10:00")  # the API gives its offset
    refused("time", moment_of, "sent_at", "next tuesday")
    refused("time", moment_of, "sent_at", 12)


def test_a_reply_is_registered_once_after_the_sending():
    reply = check_reply(sent_at=NOW - timedelta(days=3), replied_at=None, registered_at=None,
                        text=" 已收到，月底前还款 ", at=None, now=NOW)
    assert (reply.text, reply.at) == ("已收到，月底前还款", NOW)
    refused("reply_twice", check_reply, sent_at=NOW - timedelta(days=3), replied_at=NOW, registered_at=NOW,
            text="again", at=None, now=NOW)
    refused("reply_before_sent", check_reply, sent_at=NOW - timedelta(days=3), replied_at=None, registered_at=None,
            text="x", at=NOW - timedelta(days=4), now=NOW)
    refused("future", check_reply, sent_at=NOW, replied_at=None, registered_at=None, text="x",
            at=NOW + timedelta(hours=1), now=NOW)
    refused("reply", check_reply, sent_at=NOW, replied_at=None, registered_at=None, text="", at=None, now=NOW)


def test_nothing_is_sent_on_a_case_not_open_or_paused():
    check_case("open", [])
    check_case("open", ["care"])  # handled with care, not paused
    refused("case_closed", check_case, "returned", [])
    refused("case_paused", check_case, "open", ["dispute"])
    refused("case_paused", check_case, "open", ["care", "fraud"])


# -- field visits ----------------------------------------------------------------------

def member(name: str, id_: int, **changes) -> Member:
    return Member(**{"id": id_, "username": name, "role": "collector", "disabled": False, "makes_visits": True,
                     **changes})


def test_a_visit_is_asked_for_with_a_team_of_two_distinct_people():
    why, where, names = check_request("debtor unreachable by phone", "上海市浦东新区世纪大道 100 号", ["li", "wu"])
    assert names == ("li", "wu")
    assert check_team(names, {"li": member("li", 1), "wu": member("wu", 2)}) == (1, 2)
    for team in (["li"], ["li", "wu", "ma"], "li,wu", ["li", ""], ["li", 7]):
        refused("team_size", team_of, team)
    refused("team_same", team_of, ["li", " li "])
    refused("team_unknown", check_team, names, {"li": member("li", 1)})
    refused("team_disabled", check_team, names, {"li": member("li", 1), "wu": member("wu", 2, disabled=True)})
    refused("team_role", check_team, names, {"li": member("li", 1), "wu": member("wu", 2, role="qc",
                                                                                  makes_visits=False)})
    refused("team_same", check_team, names, {"li": member("li", 1), "wu": member("wu", 1)})
    refused("visit_reason", check_request, "no", "上海市浦东新区世纪大道 100 号", ["li", "wu"])
    refused("visit_address", check_request, "debtor unreachable", "上海", ["li", "wu"])


def visit(state: VisitState = VisitState.REQUESTED, **changes) -> VisitFacts:
    return VisitFacts(state, NOW - timedelta(days=2), "collector1", ("li", "wu"), **changes)


def test_a_visit_is_decided_once_by_someone_who_neither_asked_nor_goes():
    assert check_decision(visit(), True, "", "supervisor1") is None
    assert check_decision(visit(), True, " ok, two hours ", "supervisor1") == "ok, two hours"
    assert check_decision(visit(), False, "not worth the trip", "supervisor1") == "not worth the trip"
    refused("reason", check_decision, visit(), False, "", "supervisor1")
    refused("visit_own", check_decision, visit(), True, "", "collector1")
    refused("visit_own", check_decision, visit(), True, "", "wu")
    refused("state", check_decision, visit(VisitState.APPROVED), True, "", "supervisor1")
    refused("note", check_decision, visit(), True, "x" * 501, "supervisor1")


def walk(steps_at: list[tuple[str, datetime]]) -> VisitFacts:
    v = visit(VisitState.APPROVED, decided_at=NOW - timedelta(days=1))
    for step, at in steps_at:
        done = check_step(v, step, at, NOW)
        v = replace(v, state=done.state, **{done.column: done.at})
    return v


def test_the_steps_come_in_order_their_times_never_running_back():
    t0 = NOW - timedelta(hours=6)
    done = walk([("departed", t0), ("arrived", t0 + timedelta(hours=1)), ("left", t0 + timedelta(hours=2)),
                 ("returned", t0 + timedelta(hours=3))])
    assert done.state is VisitState.RETURNED and done.returned_at == t0 + timedelta(hours=3)
    refused("state", check_step, visit(), "departed", None, NOW)  # not approved yet
    refused("state", check_step, walk([]), "arrived", None, NOW)  # not departed
    refused("state", check_step, walk([("departed", t0)]), "departed", None, NOW)  # twice
    refused("step_order", check_step, walk([("departed", t0)]), "arrived", t0 - timedelta(minutes=1), NOW)
    refused("step_order", check_step, walk([]), "departed", NOW - timedelta(days=3), NOW)  # before the approval
    refused("future", check_step, walk([]), "departed", NOW + timedelta(minutes=5), NOW)
    refused("step", check_step, walk([]), "teleported", None, NOW)
    refused("state", check_step, visit(VisitState.REFUSED), "departed", None, NOW)


@given(st.lists(st.tuples(st.sampled_from([*STEPS, "reported"]), st.integers(-600, 600)), max_size=12))
def test_whatever_is_reported_the_stored_times_follow_the_steps_order(reports):
    v = visit(VisitState.APPROVED, decided_at=NOW - timedelta(hours=20))
    for step, minutes in reports:
        try:
            done = check_step(v, step, NOW - timedelta(hours=10) + timedelta(minutes=minutes), NOW)
        except RegisterRefused:
            continue
        v = replace(v, state=done.state, **{done.column: done.at})
    times = [t for t in (v.decided_at, v.departed_at, v.arrived_at, v.left_at, v.returned_at) if t is not None]
    assert times == sorted(times)
    assert [t is not None for t in (v.departed_at, v.arrived_at, v.left_at, v.returned_at)] \
        == sorted([t is not None for t in (v.departed_at, v.arrived_at, v.left_at, v.returned_at)], reverse=True)


def test_the_state_machine_moves_only_forward_and_every_state_can_be_purged():
    for state, after in MOVES.items():
        assert (VisitState.PURGED in after) == (state is not VisitState.PURGED)
    for _step, (before, after, _column) in STEPS.items():
        assert after in MOVES[before]
    assert MOVES[VisitState.RETURNED] == (VisitState.REPORTED, VisitState.PURGED)


def test_the_report_comes_after_the_return_with_a_photo_and_a_recording():
    back = visit(VisitState.RETURNED, photos=1, recordings=1)
    text = "met the debtor at home; agreed to pay 500 yuan on Friday"
    assert check_report(back, f"  {text} ") == text
    refused("report_evidence", check_report, replace(back, recordings=0), text)
    refused("report_evidence", check_report, replace(back, photos=0), text)
    refused("report", check_report, back, "too short")
    refused("state", check_report, visit(VisitState.LEFT, photos=1, recordings=1), text)


def test_attachments_are_told_by_their_bytes_during_the_visit():
    under_way = visit(VisitState.ARRIVED)
    assert check_attachment(under_way, "photo", JPEG, 1000).media_type == "image/jpeg"
    assert check_attachment(under_way, "recording", WAV, 1000).extension == "wav"
    assert check_attachment(under_way, "recording", b"#!AMR\n" + b"\x00" * 20, 10).media_type == "audio/amr"
    assert check_attachment(under_way, "photo", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 8, 10).extension == "heic"
    refused("attachment_type", check_attachment, under_way, "photo", WAV, 1000)
    refused("attachment_type", check_attachment, under_way, "recording", b"<html><script>", 1000)
    refused("attachment_kind", check_attachment, under_way, "video", JPEG, 1000)
    refused("attachment_empty", check_attachment, under_way, "photo", b"", 0)
    refused("attachment_large", check_attachment, under_way, "photo", JPEG, MAX_ATTACHMENT_BYTES + 1)
    refused("state", check_attachment, visit(VisitState.APPROVED), "photo", JPEG, 1000)
    refused("state", check_attachment, visit(VisitState.REPORTED), "photo", JPEG, 1000)
    assert file_name_of("C:\\photos\\..\\门口.jpg") == "门口.jpg" and file_name_of("../../etc/passwd") == "passwd"
    assert file_name_of(None) == "upload"


def test_a_purged_visit_takes_nothing_more():
    gone = visit(VisitState.PURGED, purged_at=NOW)
    refused("purged", check_step, gone, "departed", None, NOW)
    refused("purged", check_report, gone, "x" * 30)
    refused("purged", check_attachment, gone, "photo", JPEG, 10)
    refused("purged", check_decision, gone, True, "", "supervisor1")


# -- retention -------------------------------------------------------------------------

def test_retention_is_183_days_from_the_return_or_the_request():
    assert RETENTION == timedelta(days=183)
    requested, back = NOW - timedelta(days=30), NOW - timedelta(days=29)
    assert purge_due_at(requested) == requested + timedelta(days=183)
    assert purge_due_at(requested, back) == back + timedelta(days=183)


def test_due_for_purge_at_exactly_183_days_not_a_moment_before():
    returned = datetime(2026, 6, 1, 9, 30, tzinfo=timezone.utc)
    due = purge_due_at(returned - timedelta(days=1), returned)
    clock = ManualClock(returned + timedelta(days=183) - timedelta(microseconds=1))
    assert not due_for_purge(due, None, clock())
    clock.advance(0.000001)
    assert clock() == returned + timedelta(days=183)
    assert due_for_purge(due, None, clock())
    clock.advance(86400 * 365)
    assert due_for_purge(due, None, clock())
    assert not due_for_purge(due, clock(), clock())  # purged already: never again


def test_every_problem_has_its_words():
    for key, text in PROBLEMS.items():
        assert text and key


def test_the_visits_settings_are_checked_at_start():
    from dunline.settings import SettingsError, load_settings

    settings = load_settings(env={"DUNLINE_VISITS_DIR": "/srv/dunline/visits"})
    assert (settings.visits.dir, settings.visits.purge_interval_s) == ("/srv/dunline/visits", 86400.0)
    assert load_settings(env={}).visits.dir == "var/visits"
    with pytest.raises(SettingsError, match="visits"):
        load_settings(env={"DUNLINE_VISITS_PURGE_INTERVAL_S": "-1"})
