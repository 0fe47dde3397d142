"""Campaigns, pure: what a campaign is, its checks, its status moves, which phone of a case
it tries next, and which pacer drives it.

A campaign dials a set of cases in one **mode**:

- *preview*: nothing is dialled by itself; a collector asks for the campaign's next case,
  reads it, and dials it from the console (their own call: it reaches their seat first);
- *progressive*: one line per ready collector not already covered by a call in flight;
- *predictive*: the look-ahead pacer (dialer/pacing/predictive.py), holding the campaign's
  abandon rate to its target over a rolling 30 days.

The **selection** names the cases (all given conditions hold): batches, teams, collectors
(assignment), arrears between two amounts, overdue for at least / at most some days,
segments, regions. Only open cases are ever selected. The **phone order** says which of a
case's phones to try, by relation, first to last (a relation not listed is not tried); a
phone that is on the do-not-call list, refused (a third party) or retired (a wrong number)
is never tried. The **retry spacing** is the least time between two attempts of one case in
the campaign (the policy's own caps and gaps apply on top, to every dial). The **caller-ID
pool** narrows the client's approved pool (never widens it: a number not approved for the
client is dropped by the policy's own pool). Answering-machine detection (`amd`) is stored
with the campaign and its verdict with each attempt.

Status: draft -> running <-> paused; any -> stopped (final). A paused or stopped campaign
places no new call: the dial's own transaction checks it (dialer/originate.py).

No I/O, no clock.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from dialer.pacing.pacer import Pacer, Progressive
from dialer.pacing.predictive import Predictive
from dialer.pacing.snapshot import DEFAULT_TARGET_ABANDON_RATE

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
RELATIONS = ("own", "work", "family", "third_party")  # a phone's relation to the debtor (intake)
DEFAULT_PHONE_ORDER = ("own", "work", "family")  # third parties only when a campaign asks for them
DEFAULT_RETRY_SPACING_S = 4 * 3600
MAX_RETRY_SPACING_S = 30 * 86400
MAX_LIST = 200  # batches, teams, ... in one selection
MAX_AMOUNT_CENTS = 10**13
MAX_ID = 2**31 - 1  # an id the database can hold


class CampaignError(ValueError):
    """A campaign's definition or a change that cannot be taken (the message says why)."""


class Mode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"


class Status(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


MOVES: dict[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.RUNNING, Status.STOPPED}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.STOPPED}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.STOPPED}),
    Status.STOPPED: frozenset(),
}
# the verb of each move (the API's and the wallboard's buttons; the audit action campaign.<verb>)
VERBS: dict[str, Status] = {"start": Status.RUNNING, "pause": Status.PAUSED, "stop": Status.STOPPED}


def move(current: str, verb: str) -> Status:
    """The status `verb` leads to from `current`; CampaignError when it cannot."""
    try:
        target = VERBS[verb]
    except KeyError:
        raise CampaignError(f"no such action {verb!r}: one of {', '.join(VERBS)}") from None
    status = Status(current)
    if target not in MOVES[status]:
        raise CampaignError(f"a {status.value} campaign cannot {verb}")
    return target


@dataclass(frozen=True, slots=True)
class Selection:
    """Which cases (every condition given must hold; an empty one is no condition)."""

    batches: tuple[int, ...] = ()
    teams: tuple[int, ...] = ()
    collectors: tuple[int, ...] = ()
    min_amount_cents: int | None = None
    max_amount_cents: int | None = None
    min_overdue_days: int | None = None
    max_overdue_days: int | None = None
    segments: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            if value not in ((), None):
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A campaign's definition, checked."""

    name: str
    mode: Mode
    client: str | None = None
    selection: Selection = field(default_factory=Selection)
    phone_order: tuple[str, ...] = DEFAULT_PHONE_ORDER
    retry_spacing_s: int = DEFAULT_RETRY_SPACING_S
    caller_ids: tuple[str, ...] = ()
    amd: bool = False
    target_abandon_rate: float = DEFAULT_TARGET_ABANDON_RATE


def _ints(body: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_LIST or not all(
            type(v) is int and 0 < v <= MAX_ID for v in value):
        raise CampaignError(f"selection.{key}: a list of at most {MAX_LIST} positive ids")
    return tuple(sorted(set(value)))


def _strs(body: Mapping[str, Any], key: str, prefix: str = "selection.") -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_LIST or not all(
            isinstance(v, str) and 0 < len(v) <= 64 and v.isprintable() for v in value):
        raise CampaignError(f"{prefix}{key}: a list of at most {MAX_LIST} names (1-64 characters)")
    return tuple(dict.fromkeys(value))


def _bound(body: Mapping[str, Any], key: str, top: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= top:
        raise CampaignError(f"selection.{key}: a whole number within 0..{top}")
    return value


def selection_from(body: Any) -> Selection:
    if body is None:
        return Selection()
    if not isinstance(body, Mapping):
        raise CampaignError("selection: an object")
    unknown = set(body) - set(Selection.__slots__)  # type: ignore[attr-defined]
    if unknown:
        raise CampaignError(f"selection: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    selection = Selection(
        batches=_ints(body, "batches"), teams=_ints(body, "teams"), collectors=_ints(body, "collectors"),
        min_amount_cents=_bound(body, "min_amount_cents", MAX_AMOUNT_CENTS),
        max_amount_cents=_bound(body, "max_amount_cents", MAX_AMOUNT_CENTS),
        min_overdue_days=_bound(body, "min_overdue_days", 36500),
        max_overdue_days=_bound(body, "max_overdue_days", 36500),
        segments=_strs(body, "segments"), regions=_strs(body, "regions"))
    for low, high in (("min_amount_cents", "max_amount_cents"), ("min_overdue_days", "max_overdue_days")):
        lo, hi = getattr(selection, low), getattr(selection, high)
        if lo is not None and hi is not None and lo > hi:
            raise CampaignError(f"selection: {low} is above {high}")
    return selection


SPEC_FIELDS = frozenset({"name", "mode", "client", "selection", "phone_order", "retry_spacing_s", "caller_ids",
                         "amd", "target_abandon_rate"})


def spec_from(body: Any) -> CampaignSpec:
    """A campaign's definition from a JSON object (the API, the CLI); CampaignError says what
    is wrong, field by field."""
    if not isinstance(body, Mapping):
        raise CampaignError("a campaign is a JSON object")
    unknown = set(body) - SPEC_FIELDS
    if unknown:
        raise CampaignError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    name = body.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise CampaignError("name: 1-64 letters, digits, '_', '.', '-' (starting with a letter or digit)")
    try:
        mode = Mode(body.get("mode"))
    except ValueError:
        raise CampaignError(f"mode: one of {', '.join(m.value for m in Mode)}") from None
    client = body.get("client")
    if client is not None and (not isinstance(client, str) or not 0 < len(client) <= 64 or not client.isprintable()):
        raise CampaignError("client: a client's name (1-64 characters), or absent for any client")
    order = _strs(body, "phone_order", "") if "phone_order" in body else DEFAULT_PHONE_ORDER
    if not order or any(r not in RELATIONS for r in order):
        raise CampaignError(f"phone_order: one or more of {', '.join(RELATIONS)}, first to last")
    spacing = body.get("retry_spacing_s", DEFAULT_RETRY_SPACING_S)
    if type(spacing) is not int or not 0 < spacing <= MAX_RETRY_SPACING_S:
        raise CampaignError(f"retry_spacing_s: whole seconds within 1..{MAX_RETRY_SPACING_S}")
    caller_ids = _strs(body, "caller_ids", "")
    if any(not re.fullmatch(r"\+?[0-9]{3,20}", c) for c in caller_ids):
        raise CampaignError("caller_ids: phone numbers (digits, an optional leading +)")
    amd = body.get("amd", False)
    if type(amd) is not bool:
        raise CampaignError("amd: true or false")
    target = body.get("target_abandon_rate", DEFAULT_TARGET_ABANDON_RATE)
    if type(target) not in (int, float) or not math.isfinite(target) or not 0 <= target <= 0.03:
        raise CampaignError("target_abandon_rate: a fraction within 0..0.03 (3 % is the law's ceiling)")
    return CampaignSpec(name=name, mode=mode, client=client, selection=selection_from(body.get("selection")),
                        phone_order=order, retry_spacing_s=spacing, caller_ids=caller_ids, amd=amd,
                        target_abandon_rate=float(target))


# -- which phone ---------------------------------------------------------------------------

class PhoneLike(Protocol):
    id: int
    number: str
    kind: str
    relation: str | None
    do_not_call: bool
    refused: bool
    retired_at: Any


def relation_of(phone: PhoneLike) -> str:
    """The phone's relation to the debtor; a phone from before relations were kept is the
    debtor's own (kind "debtor") or a third party's."""
    if phone.relation in RELATIONS:
        return str(phone.relation)
    return "own" if phone.kind == "debtor" else "third_party"


def dialable(phone: PhoneLike) -> bool:
    return not (phone.do_not_call or phone.refused or phone.retired_at is not None)


def phones_in_order(phones: Iterable[PhoneLike], order: Sequence[str]) -> list[PhoneLike]:
    """The phones a campaign may try, first to last: by the order's relations, then as added."""
    rank = {relation: i for i, relation in enumerate(order)}
    usable = [p for p in phones if dialable(p) and relation_of(p) in rank]
    return sorted(usable, key=lambda p: (rank[relation_of(p)], p.id))


def next_phone(phones: Iterable[PhoneLike], order: Sequence[str], last_tried: Mapping[int, Any]) -> PhoneLike | None:
    """The phone to try now: of the usable ones, one never tried in the campaign first (in
    order), else the one tried longest ago. `last_tried`: phone id -> when last tried (any
    comparable values)."""
    usable = phones_in_order(phones, order)
    if not usable:
        return None
    fresh = [p for p in usable if p.id not in last_tried]
    if fresh:
        return fresh[0]
    return min(usable, key=lambda p: (last_tried[p.id], usable.index(p)))


def pacer_for(mode: Mode | str) -> Pacer | None:
    """The pacer that drives a campaign; None for preview (people dial it)."""
    mode = Mode(mode)
    if mode is Mode.PROGRESSIVE:
        return Progressive()
    if mode is Mode.PREDICTIVE:
        return Predictive()
    return None
