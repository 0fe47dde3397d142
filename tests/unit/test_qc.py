"""Quality control's pure core: the scorecard (every problem of validation, the total), the
ISO week on the floor's clock, and the sample (reproducible from its seed, another seed
another sample)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.qc import (DEFAULT_SAMPLE_SIZE, ITEM_KEYS, ITEMS, PROBLEMS, QcRefused, Result, Week,
                      candidates_digest, check_seed, check_size, check_week_over, default_seed, parse_week,
                      pick_sample, revises_of, total_of, validate, week_of)
from storage.qc import score_digest

ALL_PASS = {key: "pass" for key in ITEM_KEYS}


def refused(key: str, raw=ALL_PASS, comments: object = "") -> QcRefused:
    with pytest.raises(QcRefused) as caught:
        validate(raw, comments)
    assert caught.value.key == key, caught.value
    return caught.value


# -- the scorecard ----------------------------------------------------------------------

def test_the_scorecard_is_the_plans_rules_weighing_100():
    assert ITEM_KEYS == ("greeting", "identity_verified", "no_threats", "correct_amounts", "third_party_consent",
                         "care_handled", "allowed_hours")
    assert sum(i.weight for i in ITEMS) == 100
    assert {i.key for i in ITEMS if not i.na_allowed} == {"greeting", "no_threats", "allowed_hours"}
    assert {i.key for i in ITEMS if i.critical} == {"no_threats"}


def test_all_pass_is_100_and_a_fail_costs_its_weight_among_what_applies():
    card = validate(ALL_PASS, "")
    assert card.total == 100 and card.fails == () and card.items == ALL_PASS
    card = validate({**ALL_PASS, "correct_amounts": "fail"}, "said 500 instead of 350")
    assert card.total == 85 and card.fails == ("correct_amounts",)
    # not applicable: the item's weight leaves the denominator
    card = validate({**ALL_PASS, "third_party_consent": "na", "care_handled": "na", "correct_amounts": "fail"},
                    "wrong amount")
    assert card.total == round(100 * 65 / 80)  # 81.25 -> 81
    assert validate({**ALL_PASS, "third_party_consent": "na", "care_handled": "na"}, "").total == 100


def test_rounding_is_half_up():
    results = {k: Result.PASS for k in ITEM_KEYS}
    results.update(identity_verified=Result.NA, correct_amounts=Result.NA, third_party_consent=Result.NA,
                   care_handled=Result.NA, greeting=Result.FAIL)
    # applicable: greeting 10, no_threats 25, allowed_hours 10 = 45; passed 35 -> 77.78
    assert total_of(results) == 78
    results = {k: Result.PASS for k in ITEM_KEYS}
    results.update(identity_verified=Result.NA, care_handled=Result.NA, third_party_consent=Result.NA,
                   greeting=Result.FAIL)
    # applicable 60, passed 50 -> 83.33
    assert total_of(results) == 83


def test_a_threat_makes_the_call_zero_whatever_else_passed():
    card = validate({**ALL_PASS, "no_threats": "fail"}, "told the debtor they would be 'visited'")
    assert card.total == 0 and card.fails == ("no_threats",)


@pytest.mark.parametrize("raw,key", [
    ({k: v for k, v in ALL_PASS.items() if k != "greeting"}, "item_missing"),
    ({**ALL_PASS, "greeting": ""}, "item_missing"),
    ({**ALL_PASS, "greeting": None}, "item_missing"),
    ({**ALL_PASS, "smiling": "pass"}, "item_unknown"),
    ({**ALL_PASS, "greeting": "good"}, "result"),
    ({**ALL_PASS, "greeting": 1}, "result"),
    ({**ALL_PASS, "greeting": True}, "result"),
    ({**ALL_PASS, "greeting": ["pass"]}, "result"),
    ({**ALL_PASS, "no_threats": "na"}, "na_not_allowed"),
    ({**ALL_PASS, "allowed_hours": "na"}, "na_not_allowed"),
    ({**ALL_PASS, "greeting": "na"}, "na_not_allowed"),
])
def test_a_bad_scorecard_names_its_problem(raw, key):
    refused(key, raw)


def test_a_list_instead_of_items_is_refused():
    refused("item_missing", ["pass"] * 7)  # type: ignore[arg-type]


@pytest.mark.parametrize("comments", ["x" * 2001, "bell\x07", 42, ["no"]])
def test_comments_are_text_of_bounded_length(comments):
    refused("comments", comments=comments)


@pytest.mark.parametrize("comments", ["", "  ", "ok", None])
def test_a_fail_needs_a_comment_the_collector_can_read(comments):
    refused("comments_needed", {**ALL_PASS, "greeting": "fail"}, comments)


def test_comments_are_kept_trimmed_and_multiline():
    assert validate(ALL_PASS, "  good call\nclear amounts  ").comments == "good call\nclear amounts"


@given(st.dictionaries(st.sampled_from(ITEM_KEYS), st.sampled_from(["pass", "fail", "na"]),
                       min_size=len(ITEM_KEYS)))
def test_any_accepted_card_totals_within_0_and_100(raw):
    try:
        card = validate(raw, "a reason for each fail")
    except QcRefused as exc:
        assert exc.key == "na_not_allowed"
        return
    assert 0 <= card.total <= 100
    assert (card.total == 100) == (not card.fails)


def test_revises_is_a_score_id():
    assert revises_of(None) is None and revises_of("") is None
    assert revises_of("12") == 12 and revises_of(12) == 12
    for bad in ("x", "-1", "1.5", True, 0, 10**13, "١٢"):
        with pytest.raises(QcRefused) as caught:
            revises_of(bad)
        assert caught.value.key == "revises"


def test_the_digest_covers_every_result_and_the_comments():
    base = score_digest("2026.1", ALL_PASS, "fine")
    assert base == score_digest("2026.1", dict(reversed(list(ALL_PASS.items()))), "fine"), "order does not count"
    assert base != score_digest("2026.1", {**ALL_PASS, "greeting": "fail"}, "fine")
    assert base != score_digest("2026.1", ALL_PASS, "fine.")
    assert base != score_digest("2026.2", ALL_PASS, "fine")


def test_every_problem_key_is_known():
    assert {"item_missing", "item_unknown", "result", "na_not_allowed", "comments", "comments_needed"} <= PROBLEMS


# -- weeks ------------------------------------------------------------------------------

def test_a_week_runs_from_monday_midnight_in_beijing():
    week = parse_week("2026-W49")
    assert str(week) == "2026-W49"
    assert week.starts_at == datetime(2026, 11, 29, 16, 0, tzinfo=timezone.utc)  # Mon 30 Nov 00:00 +08
    assert week.ends_at == datetime(2026, 12, 6, 16, 0, tzinfo=timezone.utc)
    assert week_of(week.starts_at) == week
    assert week_of(week.starts_at - timedelta(microseconds=1)) == Week(2026, 48)
    assert week_of(week.ends_at) == Week(2026, 50)
    assert week.previous() == Week(2026, 48)
    assert parse_week("2027-W01").previous() == Week(2026, 53), "2026 has 53 ISO weeks"


@pytest.mark.parametrize("text", ["2026-49", "2026-W1", "2025-W53", "2026-W54", "2026-W00", "w49", "", None, 2026,
                                  "1999-W10", "２０２６-W49", "2026-W49\x00"])
def test_a_bad_week_is_refused(text):
    with pytest.raises(QcRefused) as caught:
        parse_week(text)
    assert caught.value.key == "week"


def test_a_week_is_sampled_once_it_is_over():
    week = parse_week("2026-W49")
    with pytest.raises(QcRefused) as caught:
        check_week_over(week, week.ends_at - timedelta(seconds=1))
    assert caught.value.key == "week_not_over"
    check_week_over(week, week.ends_at)


# -- the sample -------------------------------------------------------------------------

IDS = [f"{n:032x}" for n in range(1, 41)]


def test_the_sample_is_reproducible_from_its_seed():
    first = pick_sample(IDS, seed="s1", week="2026-W49", collector="zhang", size=5)
    assert len(first) == 5 and set(first) <= set(IDS)
    assert pick_sample(list(reversed(IDS)), seed="s1", week="2026-W49", collector="zhang", size=5) == first
    assert pick_sample(IDS + IDS[:3], seed="s1", week="2026-W49", collector="zhang", size=5) == first


def test_the_sample_is_checkable_with_sha256_alone():
    ranked = sorted(IDS, key=lambda a: hashlib.sha256(f"s1:2026-W49:zhang:{a}".encode()).hexdigest())
    assert pick_sample(IDS, seed="s1", week="2026-W49", collector="zhang", size=5) == tuple(ranked[:5])


def test_another_seed_week_or_collector_draws_another_sample():
    first = pick_sample(IDS, seed="s1", week="2026-W49", collector="zhang", size=5)
    assert pick_sample(IDS, seed="s2", week="2026-W49", collector="zhang", size=5) != first
    assert pick_sample(IDS, seed="s1", week="2026-W50", collector="zhang", size=5) != first
    assert pick_sample(IDS, seed="s1", week="2026-W49", collector="li", size=5) != first


def test_a_bigger_size_keeps_the_smaller_samples_picks_and_never_exceeds_the_candidates():
    small = pick_sample(IDS, seed="s", week="2026-W49", collector="c", size=3)
    assert pick_sample(IDS, seed="s", week="2026-W49", collector="c", size=8)[:3] == small
    assert sorted(pick_sample(IDS[:4], seed="s", week="2026-W49", collector="c", size=10)) == IDS[:4]
    assert pick_sample([], seed="s", week="2026-W49", collector="c", size=5) == ()


def test_the_default_seed_is_the_weeks_own():
    week = parse_week("2026-W49")
    assert check_seed(None, week) == check_seed("", week) == default_seed(week) == default_seed("2026-W49")
    assert default_seed(week) != default_seed(parse_week("2026-W50"))
    assert check_seed(" dice-4-2-6 ", week) == "dice-4-2-6"
    for bad in ("a b", "x" * 65, "种子", 7, "a/b"):
        with pytest.raises(QcRefused) as caught:
            check_seed(bad, week)
        assert caught.value.key == "seed"


def test_the_size_is_1_to_100_default_5():
    assert check_size(None) == check_size("") == DEFAULT_SAMPLE_SIZE == 5
    assert check_size("12") == 12 and check_size(3) == 3 and check_size(None, default=8) == 8
    for bad in (0, "0", 101, "-1", "five", True, 2.5):
        with pytest.raises(QcRefused) as caught:
            check_size(bad)
        assert caught.value.key == "size"


def test_the_candidates_digest_is_of_the_sorted_ids():
    assert candidates_digest(IDS[::-1]) == candidates_digest(IDS) == hashlib.sha256(
        "".join(f"{a}\n" for a in IDS).encode()).hexdigest()


# -- the words ------------------------------------------------------------------------

def test_every_item_result_and_problem_is_worded_in_both_languages():
    from cases.qc import RESULTS
    from console import i18n

    keys = set(i18n.MESSAGES)
    assert {k for k in keys if k.startswith("qc.item.")} == {f"qc.item.{k}" for k in ITEM_KEYS}
    assert {k for k in keys if k.startswith("qc.result.")} == {f"qc.result.{r}" for r in RESULTS}
    assert {k for k in keys if k.startswith("qc.short.")} == {f"qc.short.{k}" for k in ITEM_KEYS}
    assert {k for k in keys if k.startswith("qc.problem.")} == {f"qc.problem.{p}" for p in PROBLEMS}


def test_a_refusal_names_the_item_in_the_readers_language():
    from console.qc_api import refusal_text

    with pytest.raises(QcRefused) as caught:
        validate({**ALL_PASS, "no_threats": "na"}, "")
    assert refusal_text(caught.value, "en") == "scorecard: No threats, intimidation or insults applies to every call (not na)"
    assert "无威胁" in refusal_text(caught.value, "zh-CN")
    with pytest.raises(QcRefused) as caught:
        check_week_over(parse_week("2026-W49"), datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert refusal_text(caught.value, "en") == "2026-W49 is not over until 2026-12-07T00:00:00+08:00: draw it then"
