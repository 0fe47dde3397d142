"""Dispositions without I/O: what validation accepts and refuses (each problem by its key),
and the effects table (what each code changes in the dialing policy's inputs; a correction
undoing only the agreed time it made)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.dispositions import (AGREED_WITHIN_DAYS, CODES, NEEDS_ANSWER, PROMISE_WITHIN_DAYS, AddAppointment,
                                CallContext, CancelAppointment, CaseState, Code, Corrected, Disposition,
                                DispositionRefused, PhoneState, RaiseFlag, RefuseThirdParty, RetirePhone, effects,
                                validate)

UTC = timezone.utc
NOON_SH = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
CALL = CallContext(now=NOON_SH, answered=True, phone_kind="debtor", zone="Asia/Shanghai", arrears_cents=123_450)
NOTES = "says the bill was paid in October"


def check(raw: dict, ctx: CallContext = CALL) -> Disposition:
    return validate(raw, ctx)


def refused(raw: dict, ctx: CallContext = CALL) -> DispositionRefused:
    with pytest.raises(DispositionRefused) as caught:
        validate(raw, ctx)
    return caught.value


def key_of(raw: dict, ctx: CallContext = CALL) -> str:
    return refused(raw, ctx).key


# -- validation ---------------------------------------------------------------------------

def test_every_code_with_what_it_needs_is_accepted():
    needs = {"promise_to_pay": {"amount": "500", "promise_date": "2026-12-05"},
             "call_back": {"callback_at": "2026-11-30T21:30"}}
    for code in CODES:
        d = check({"code": code, "notes": NOTES, **needs.get(code, {})},
                     replace(CALL, phone_kind="third_party" if code.startswith("third_party") else "debtor"))
        assert d.code == code and d.notes == NOTES


@pytest.mark.parametrize("code", [None, "", "DISPUTE", "paid", 3, ["dispute"], "dispute "])
def test_an_unknown_code_is_refused_naming_the_codes(code):
    problem = refused({"code": code})
    assert problem.key == "code" and "wrong_number" in problem.values["codes"]


def test_a_conversation_needs_an_answered_call_and_not_contacted_does_not():
    unanswered = replace(CALL, answered=False)
    for code in sorted(NEEDS_ANSWER):
        extra = {"notes": NOTES, "amount": "5", "promise_date": "2026-12-01", "callback_at": "2026-12-01T10:00"}
        assert key_of({"code": code, **extra}, replace(unanswered, phone_kind="third_party")) == "needs_answer"
    assert check({"code": "not_contacted"}, unanswered).code is Code.NOT_CONTACTED
    assert set(Code) - NEEDS_ANSWER == {Code.NOT_CONTACTED}


def test_pauses_need_notes_saying_what_was_said_and_notes_are_bounded_text():
    for code in ("dispute", "fraud", "illness_or_pregnancy"):
        assert key_of({"code": code}) == "notes_needed"
        assert key_of({"code": code, "notes": "  ab  "}) == "notes_needed"
    assert check({"code": "contacted"}).notes == ""
    assert key_of({"code": "contacted", "notes": "x" * 2001}) == "notes"
    assert key_of({"code": "contacted", "notes": 12}) == "notes"
    assert check({"code": "contacted", "notes": "a\x00b\x1bc\n d "}).notes == "abc\n d"


def test_a_refusal_is_a_third_partys_only():
    assert key_of({"code": "third_party_refused"}) == "refusal_on_debtor"
    third = replace(CALL, phone_kind="third_party")
    assert check({"code": "third_party_refused"}, third).code is Code.THIRD_PARTY_REFUSED
    assert check({"code": "third_party_consented"}, CALL).code is Code.THIRD_PARTY_CONSENTED


@pytest.mark.parametrize("amount, cents", [("500", 50_000), ("1234.50", 123_450), ("0.01", 1), (500, 50_000),
                                           (12.5, 1250), (" 7.5 ", 750)])
def test_a_promise_amount_in_yuan(amount, cents):
    d = check({"code": "promise_to_pay", "amount": amount, "promise_date": "2026-12-01"})
    assert (d.amount_cents, d.promise_date) == (cents, date(2026, 12, 1))


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "1e3", "5.001", "abc", "", None, True, [], "１００", "5,00",
                                    float("nan"), "Infinity"])
def test_a_promise_amount_that_is_not_a_sum_above_zero_is_refused(amount):
    assert key_of({"code": "promise_to_pay", "amount": amount, "promise_date": "2026-12-01"}) == "amount"


def test_a_promise_above_the_arrears_is_refused_as_a_likely_typo():
    problem = refused({"code": "promise_to_pay", "amount": "1234.51", "promise_date": "2026-12-01"})
    assert problem.key == "amount_over" and problem.values == {"arrears": "1234.50"}
    unknown = replace(CALL, arrears_cents=None)
    assert check({"code": "promise_to_pay", "amount": "50000", "promise_date": "2026-12-01"}, unknown)
    assert key_of({"code": "promise_to_pay", "amount": "1000000001", "promise_date": "2026-12-01"}, unknown) == "amount"


def test_a_promise_date_is_the_debtors_date_not_in_the_past_nor_too_far():
    late_evening = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 01:00 on 1 December in Shanghai
    ctx = replace(CALL, now=late_evening)
    problem = refused({"code": "promise_to_pay", "amount": "5", "promise_date": "2026-11-30"}, ctx)
    assert problem.key == "promise_past" and problem.values == {"today": "2026-12-01"}
    in_new_york = replace(ctx, zone="America/New_York")  # still 30 November there
    assert check({"code": "promise_to_pay", "amount": "5", "promise_date": "2026-11-30"}, in_new_york)
    last = (date(2026, 12, 1) + timedelta(days=PROMISE_WITHIN_DAYS)).isoformat()
    assert check({"code": "promise_to_pay", "amount": "5", "promise_date": last}, ctx)
    too_far = (date(2026, 12, 2) + timedelta(days=PROMISE_WITHIN_DAYS)).isoformat()
    assert key_of({"code": "promise_to_pay", "amount": "5", "promise_date": too_far}, ctx) == "promise_far"
    for bad in ("2026-13-01", "20261201", "2026/12/01", "2026-12-01T10:00", "tomorrow", None, 20261201):
        assert key_of({"code": "promise_to_pay", "amount": "5", "promise_date": bad}) == "promise_date", bad


def test_an_agreed_time_is_the_callees_local_time_still_to_come():
    d = check({"code": "call_back", "callback_at": "2026-11-30T21:30"})
    assert d.callback_at == datetime(2026, 11, 30, 13, 30, tzinfo=UTC)
    with_offset = check({"code": "call_back", "callback_at": "2026-11-30T21:30:00+08:00"},
                           replace(CALL, zone=None))
    assert with_offset.callback_at == datetime(2026, 11, 30, 13, 30, tzinfo=UTC)
    assert key_of({"code": "call_back", "callback_at": "2026-11-30T21:30"}, replace(CALL, zone=None)) \
        == "callback_zone"
    assert key_of({"code": "call_back", "callback_at": "2026-11-30T12:00"}) == "callback_past", "now is not to come"
    assert key_of({"code": "call_back", "callback_at": "2026-11-30T11:59"}) == "callback_past"
    last = (NOON_SH + timedelta(days=AGREED_WITHIN_DAYS)).isoformat()
    assert check({"code": "call_back", "callback_at": last})
    later = (NOON_SH + timedelta(days=AGREED_WITHIN_DAYS, minutes=1)).isoformat()
    assert key_of({"code": "call_back", "callback_at": later}) == "callback_far"
    for bad in ("2026-11-30", "21:30", "tonight", "2026-11-30T25:00", None, 1764509400, "2026-11-30T21:30:00.000000+08:00" + "0" * 9):
        assert key_of({"code": "call_back", "callback_at": bad}) == "callback_at", bad


def test_fields_a_code_does_not_use_are_ignored_not_stored():
    d = check({"code": "dispute", "notes": NOTES, "amount": "-5", "promise_date": "yesterday",
                  "callback_at": "never"})
    assert (d.amount_cents, d.promise_date, d.callback_at) == (None, None, None)


def test_a_correction_names_an_uncorrected_disposition_of_this_call():
    ctx = replace(CALL, open_ids=frozenset({3, 5}), corrected={2: 3})
    assert check({"code": "contacted", "corrects": 5}, ctx).corrects == 5
    assert check({"code": "contacted", "corrects": "3"}, ctx).corrects == 3
    assert check({"code": "contacted", "corrects": ""}, ctx).corrects is None
    problem = refused({"code": "contacted", "corrects": 2}, ctx)
    assert problem.key == "corrected_already" and problem.values == {"id": 2, "by": 3}
    for other in (4, 0, -1, "x", True, 3.0, "99999999999999"):
        assert key_of({"code": "contacted", "corrects": other}, ctx) == "corrects", other


# -- effects ------------------------------------------------------------------------------

CASE = CaseState()
DEBTOR = PhoneState(7, "debtor")
THIRD = PhoneState(8, "third_party")
LATER = datetime(2026, 11, 30, 13, 30, tzinfo=UTC)


def test_the_effects_of_each_code():
    table = {
        Code.CONTACTED: (), Code.NOT_CONTACTED: (), Code.NEGOTIATION_FAILED: (), Code.THIRD_PARTY_CONSENTED: (),
        Code.PROMISE_TO_PAY: (),  # kept on the disposition: a follow-up due on its date
        Code.DISPUTE: (RaiseFlag("dispute"),), Code.FRAUD: (RaiseFlag("fraud"),),
        Code.ILLNESS_OR_PREGNANCY: (RaiseFlag("care"),), Code.WRONG_NUMBER: (RetirePhone(7),),
    }
    for code, expected in table.items():
        assert effects(Disposition(code), CASE, DEBTOR) == expected, code
    assert effects(Disposition(Code.THIRD_PARTY_REFUSED), CASE, THIRD) == (RefuseThirdParty(8),)
    assert effects(Disposition(Code.THIRD_PARTY_REFUSED), CASE, DEBTOR) == (), "a debtor's phone never 'refuses'"
    assert effects(Disposition(Code.CALL_BACK, callback_at=LATER), CASE, DEBTOR) == (AddAppointment(LATER, "debtor"),)
    assert effects(Disposition(Code.CALL_BACK, callback_at=LATER), CASE, THIRD) \
        == (AddAppointment(LATER, "third_party"),), "agreed by the person on the line"


def test_a_change_already_in_place_is_not_made_again():
    assert effects(Disposition(Code.DISPUTE), CaseState(frozenset({"dispute"})), DEBTOR) == ()
    assert effects(Disposition(Code.FRAUD), CaseState(frozenset({"dispute"})), DEBTOR) == (RaiseFlag("fraud"),)
    assert effects(Disposition(Code.ILLNESS_OR_PREGNANCY), CaseState(frozenset({"care"})), DEBTOR) == ()
    assert effects(Disposition(Code.WRONG_NUMBER), CASE, replace(DEBTOR, retired=True)) == ()
    assert effects(Disposition(Code.THIRD_PARTY_REFUSED), CASE, replace(THIRD, refused=True)) == ()


def test_a_correction_cancels_the_agreed_time_it_replaces_and_nothing_else():
    callback = Corrected(Code.CALL_BACK, appointment_id=4, appointment_live=True)
    assert effects(Disposition(Code.CONTACTED, corrects=1), CASE, DEBTOR, callback) == (CancelAppointment(4),)
    assert effects(Disposition(Code.CALL_BACK, callback_at=LATER, corrects=1), CASE, DEBTOR, callback) \
        == (CancelAppointment(4), AddAppointment(LATER, "debtor"))
    gone = replace(callback, appointment_live=False)
    assert effects(Disposition(Code.CONTACTED, corrects=1), CASE, DEBTOR, gone) == ()
    # a pause stays until a supervisor lifts it: correcting a dispute does not clear it
    disputed = CaseState(frozenset({"dispute"}))
    assert effects(Disposition(Code.CONTACTED, corrects=1), disputed, DEBTOR, Corrected(Code.DISPUTE)) == ()


states = st.builds(CaseState, st.frozensets(st.sampled_from(["dispute", "fraud", "care"])))
phones = st.builds(PhoneState, st.just(9), st.sampled_from(["debtor", "third_party"]), st.booleans(), st.booleans())


@given(code=st.sampled_from(list(Code)), case=states, phone=phones)
def test_effects_only_ever_pause_except_an_agreed_time_and_a_second_time_change_nothing(code, case, phone):
    d = Disposition(code, callback_at=LATER if code is Code.CALL_BACK else None)
    changes = effects(d, case, phone)
    assert all(isinstance(c, (RaiseFlag, RefuseThirdParty, RetirePhone, AddAppointment)) for c in changes)
    assert any(isinstance(c, AddAppointment) for c in changes) == (code is Code.CALL_BACK)
    after_case = CaseState(case.flags | {c.flag for c in changes if isinstance(c, RaiseFlag)})
    after_phone = replace(phone, refused=phone.refused or any(isinstance(c, RefuseThirdParty) for c in changes),
                          retired=phone.retired or any(isinstance(c, RetirePhone) for c in changes))
    again = effects(d, after_case, after_phone)
    assert [c for c in again if not isinstance(c, AddAppointment)] == []
