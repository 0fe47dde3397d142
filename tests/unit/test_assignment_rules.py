"""The assignment rules without a database: bands, balance, routes, and properties over
any set of cases and collectors."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cases.assignment import CaseToPlace, CollectorLoad, Rule, amount_band, overdue_band, plan

TODAY = date(2026, 12, 3)


def test_bands():
    assert [amount_band(c) for c in (None, 99_999, 100_000, 5_000_000, 10_000_000_00)] == [
        "<1k", "<1k", "1k-5k", "20k-100k", ">=100k"]
    assert [overdue_band(TODAY - timedelta(days=d), TODAY) for d in (0, 30, 31, 90, 91, 181)] == [
        "M1", "M1", "M2", "M3", "M4", "M6+"]


def test_round_robin_fills_the_least_loaded_first():
    cases = [CaseToPlace(f"C{i}") for i in range(6)]
    result = plan(cases, [CollectorLoad(1, 3), CollectorLoad(2, 0), CollectorLoad(3, 1)], Rule.ROUND_ROBIN, TODAY)
    per = {cid: list(result.placed.values()).count(cid) for cid in (1, 2, 3)}
    assert per == {1: 1, 2: 3, 3: 2} and not result.unrouted


def test_routes_send_each_band_to_its_collectors_and_name_the_unrouted():
    cases = [CaseToPlace("small", 50_000), CaseToPlace("big", 50_000_000), CaseToPlace("mid", 300_000)]
    result = plan(cases, [CollectorLoad(1), CollectorLoad(2)], Rule.AMOUNT_BAND, TODAY,
                  routes={"<1k": [1], ">=100k": [2]})
    assert result.placed == {"small": 1, "big": 2} and result.unrouted == {"mid": "1k-5k"}


def test_without_routes_each_collector_gets_a_share_of_every_band():
    cases = [CaseToPlace(f"S{i}", 10_000) for i in range(4)] + [CaseToPlace(f"B{i}", 90_000_000) for i in range(4)]
    result = plan(cases, [CollectorLoad(1), CollectorLoad(2)], Rule.AMOUNT_BAND, TODAY)
    for collector in (1, 2):
        mine = [c for c, who in result.placed.items() if who == collector]
        assert sum(c.startswith("S") for c in mine) == 2 and sum(c.startswith("B") for c in mine) == 2


def test_no_collectors_places_nothing():
    result = plan([CaseToPlace("A")], [], Rule.REGION, TODAY)
    assert result.placed == {} and result.unrouted == {"A": "-"}


@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 400), st.sampled_from(["北京", "上海", None])),
                max_size=60),
       st.integers(1, 6), st.sampled_from(list(Rule)))
def test_every_case_placed_once_and_the_load_stays_even(rows, n_collectors, rule):
    cases = [CaseToPlace(f"C{i}", cents, TODAY - timedelta(days=days), region)
             for i, (cents, days, region) in enumerate(rows)]
    collectors = [CollectorLoad(i + 1) for i in range(n_collectors)]
    result = plan(cases, collectors, rule, TODAY)
    assert set(result.placed) == {c.id for c in cases} and not result.unrouted
    counts = [list(result.placed.values()).count(c.id) for c in collectors]
    assert max(counts) - min(counts) <= 1
