"""Which collector works which case: the assignment rules, pure (cases/assign_store.py
loads and stores). A plan never moves a case a rule cannot place; it says which ones.

- **round_robin**: every case to the least-loaded collector (load = open cases already
  held plus those given in this plan; ties to the lower id), so a batch spreads evenly.
- **amount_band / overdue_band / region**: each case's band (or region) is routed to the
  collectors named for it (`routes`), least-loaded first among them; a band without a
  route is left unassigned and listed. Without routes, the cases are dealt out by band in
  turn, so every collector gets a like share of each band.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Rule(StrEnum):
    ROUND_ROBIN = "round_robin"
    AMOUNT_BAND = "amount_band"
    OVERDUE_BAND = "overdue_band"
    REGION = "region"


# (upper bound exclusive in yuan, name); the last band is open-ended
AMOUNT_BANDS: tuple[tuple[int | None, str], ...] = (
    (1_000, "<1k"), (5_000, "1k-5k"), (20_000, "5k-20k"), (100_000, "20k-100k"), (None, ">=100k"))
# (last overdue day, name): the industry's M1..M6+ (30-day months)
OVERDUE_BANDS: tuple[tuple[int | None, str], ...] = (
    (30, "M1"), (60, "M2"), (90, "M3"), (120, "M4"), (180, "M5-M6"), (None, "M6+"))


def amount_band(cents: int | None) -> str:
    yuan = (cents or 0) / 100
    return next(name for bound, name in AMOUNT_BANDS if bound is None or yuan < bound)


def overdue_band(since: date | None, today: date) -> str:
    days = (today - since).days if since else 0
    return next(name for bound, name in OVERDUE_BANDS if bound is None or days <= bound)


@dataclass(frozen=True, slots=True)
class CaseToPlace:
    id: str
    arrears_cents: int | None = None
    overdue_since: date | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class CollectorLoad:
    id: int
    open_cases: int = 0


@dataclass(slots=True)
class Plan:
    placed: dict[str, int] = field(default_factory=dict)  # case id -> collector id
    unrouted: dict[str, str] = field(default_factory=dict)  # case id -> its key no route names


def key_of(rule: Rule, case: CaseToPlace, today: date) -> str:
    match rule:
        case Rule.AMOUNT_BAND:
            return amount_band(case.arrears_cents)
        case Rule.OVERDUE_BAND:
            return overdue_band(case.overdue_since, today)
        case Rule.REGION:
            return case.region or "-"
    return ""


def plan(cases: Sequence[CaseToPlace], collectors: Sequence[CollectorLoad], rule: Rule, today: date,
         routes: Mapping[str, Sequence[int]] | None = None) -> Plan:
    result = Plan()
    if not collectors:
        result.unrouted = {c.id: key_of(rule, c, today) for c in cases}
        return result
    load = {c.id: c.open_cases for c in collectors}
    keyed = sorted(cases, key=lambda c: (key_of(rule, c, today), c.id))  # deal band by band
    for case in keyed:
        key = key_of(rule, case, today)
        pool: Sequence[int] = list(load)
        if routes is not None and rule is not Rule.ROUND_ROBIN:
            pool = [cid for cid in routes.get(key, ()) if cid in load]
            if not pool:
                result.unrouted[case.id] = key
                continue
        chosen = min(pool, key=lambda cid: (load[cid], cid))
        result.placed[case.id] = chosen
        load[chosen] += 1
    return result
