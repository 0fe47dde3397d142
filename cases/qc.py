"""Quality control (QC质控岗): the scorecard made from the client's conduct rules
(../shared/seed/collection-project-plan.zh.txt, 催收作业管理规范), and the week's sample of a
collector's recorded calls. Pure: no I/O, no clock (``now`` is passed in).

The scorecard (version ``SCORECARD_VERSION``): each item is pass / fail / not applicable; an
item's weight counts only when it applies; the total is the weighted share of the applicable
items that passed, 0-100 (rounded half up), and 0 whenever a *critical* item fails (threats or
insults: the plan's 严禁). Greeting, conduct and the call's hour apply to every call; the rest
may not (no amount was discussed, no third party was on the line, no care situation arose).
A fail needs a comment saying what was wrong (the collector reads it).

The sample: a week is an ISO week on the floor's clock (Asia/Shanghai, Monday 00:00 to the
next Monday 00:00; text ``2026-W49``). The candidates are the collector's recorded calls that
ended within it. Each candidate is ranked by SHA-256 of ``"{seed}:{week}:{collector}:{attempt
id}"`` and the ``size`` lowest ranks are the sample: the same seed, week, collector and
candidates give the same sample anywhere (``sha256sum`` suffices to check it), another seed
another one; a bigger size keeps the smaller sample's picks. The default seed is derived from
the week alone (``default_seed``) so a re-run without one picks the same calls; a QC officer
who wants picks nobody could compute beforehand gives their own seed.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

from cases.weekly_report import Week as ReportWeek, WeekError

SCORECARD_VERSION = "2026.1"
QC_ZONE = ZoneInfo("Asia/Shanghai")  # the floor's clock: weeks start on its Monday midnight
DEFAULT_SAMPLE_SIZE = 5
MAX_SAMPLE_SIZE = 100
COMMENTS_MAX = 2000
COMMENTS_MIN_ON_FAIL = 4
SEED_MAX = 64

_SEED = re.compile(r"[0-9A-Za-z._:-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Result(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NA = "na"  # not applicable on this call


RESULTS: tuple[str, ...] = tuple(r.value for r in Result)


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    weight: int
    rule: str  # where the plan says it
    na_allowed: bool = True
    critical: bool = False  # a fail makes the total 0


# the plan's rules, in the order a call goes; weights add up to 100
ITEMS: tuple[Item, ...] = (
    Item("greeting", 10, "(5) 使用认可的工作证件及身份，严禁冒称联通公司、行政执法部门", na_allowed=False),
    Item("identity_verified", 20, "(3) 确认欠费人身份等信息，严禁在不能确认的情况下贸然催收；信息不得泄露"),
    Item("no_threats", 25, "(1) 严禁粗口、恐吓、侮辱、谩骂等语言", na_allowed=False, critical=True),
    Item("correct_amounts", 15, "(3) 确认逾期欠款金额"),
    Item("third_party_consent", 10, "(6) 请求第三方配合须征得对方同意，不愿意时应立即结束谈话"),
    Item("care_handled", 10, "(7) 重大疾病、怀有身孕等特殊情况，选择恰当时间及方式"),
    Item("allowed_hours", 10, "(2) 催收作业时间 8:00-21:00（约定除外）", na_allowed=False),
)
ITEM_KEYS: tuple[str, ...] = tuple(i.key for i in ITEMS)
_BY_KEY = {i.key: i for i in ITEMS}
assert sum(i.weight for i in ITEMS) == 100

# every problem a refusal names: the console's catalog words each, `qc.problem.<key>`
PROBLEMS: frozenset[str] = frozenset({
    "item_missing", "item_unknown", "result", "na_not_allowed", "comments", "comments_needed",
    "week", "week_not_over", "size", "seed", "revises", "scored_already",
})


class QcRefused(ValueError):
    """What was asked is refused; nothing is stored. ``key`` names the problem (one of
    ``PROBLEMS``), ``values`` fill its blanks."""

    def __init__(self, key: str, **values: object) -> None:
        assert key in PROBLEMS, key
        self.key = key
        self.values = values
        super().__init__(f"{key}: {values}" if values else key)


# -- the scorecard ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Scorecard:
    """A checked scorecard: every item's result (in ITEMS order), the comments, the total."""

    results: tuple[tuple[str, Result], ...]
    comments: str
    total: int
    version: str = SCORECARD_VERSION

    @property
    def items(self) -> dict[str, str]:
        return {key: result.value for key, result in self.results}

    @property
    def fails(self) -> tuple[str, ...]:
        return tuple(key for key, result in self.results if result is Result.FAIL)


def total_of(results: Mapping[str, Result]) -> int:
    """0-100: the weighted share of the applicable items that passed (half up); 0 when a
    critical item failed."""
    if any(results.get(i.key) is Result.FAIL and i.critical for i in ITEMS):
        return 0
    applicable = sum(i.weight for i in ITEMS if results.get(i.key) in (Result.PASS, Result.FAIL))
    passed = sum(i.weight for i in ITEMS if results.get(i.key) is Result.PASS)
    if applicable == 0:  # pragma: no cover  (three items always apply)
        return 0
    return (200 * passed + applicable) // (2 * applicable)


def _comments(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > COMMENTS_MAX or _CONTROL.search(value):
        raise QcRefused("comments", max=COMMENTS_MAX)
    return value.strip()


def validate(raw_items: Mapping[str, object], comments: object) -> Scorecard:
    """A submitted scorecard (the form's or the API's strings), checked: every item once with
    pass / fail / na (na only where the item allows it), comments text, and a comment when
    anything failed. The first problem found is raised."""
    if not isinstance(raw_items, Mapping):
        raise QcRefused("item_missing", item=ITEM_KEYS[0])
    unknown = sorted(str(k)[:40] for k in raw_items if k not in _BY_KEY)
    if unknown:
        raise QcRefused("item_unknown", item=unknown[0])
    results: dict[str, Result] = {}
    for item in ITEMS:
        value = raw_items.get(item.key)
        if value is None or value == "":
            raise QcRefused("item_missing", item=item.key)
        try:
            result = Result(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
        except ValueError:
            raise QcRefused("result", item=item.key) from None
        if result is Result.NA and not item.na_allowed:
            raise QcRefused("na_not_allowed", item=item.key)
        results[item.key] = result
    text = _comments(comments)
    if any(r is Result.FAIL for r in results.values()) and len(text) < COMMENTS_MIN_ON_FAIL:
        raise QcRefused("comments_needed", min=COMMENTS_MIN_ON_FAIL)
    return Scorecard(tuple((i.key, results[i.key]) for i in ITEMS), text, total_of(results))


def revises_of(value: object) -> int | None:
    """The id of the score a submission revises (a form's hidden field, or JSON)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value.strip()):
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**12:
        return value
    raise QcRefused("revises")


# -- weeks ------------------------------------------------------------------------------

class Week(ReportWeek):
    """An ISO week on the floor's clock: the weekly report's week (cases/weekly_report.py, the
    one calendar), with the names QC reads it by (UTC instants, its Monday, the week before)."""

    __slots__ = ()

    @property
    def monday(self) -> date:
        return self.first_day

    @property
    def starts_at(self) -> datetime:
        """Monday 00:00 on the floor's clock, as aware UTC."""
        return self.start.astimezone(timezone.utc)

    @property
    def ends_at(self) -> datetime:
        """The next Monday 00:00 on the floor's clock (exclusive), as aware UTC."""
        return self.end.astimezone(timezone.utc)

    def previous(self) -> Week:
        return week_of(self.starts_at - timedelta(days=1))


def parse_week(text: object) -> Week:
    """'2026-W49' -> Week; QcRefused('week') for anything else (W53 only in a year that has it)."""
    try:
        return Week.parse(text)
    except WeekError:
        raise QcRefused("week") from None


def week_of(at: datetime) -> Week:
    """The ISO week an aware time falls in, on the floor's clock."""
    return Week.of(at)


def check_week_over(week: Week, now: datetime) -> None:
    """A week is sampled once it is over (every call of it has ended)."""
    if now < week.ends_at:
        raise QcRefused("week_not_over", week=str(week), ends=week.ends_at.astimezone(QC_ZONE).isoformat())


# -- the sample -------------------------------------------------------------------------

def default_seed(week: Week | str) -> str:
    """The seed of a week's sample when none is given: derived from the week alone."""
    return "qc-" + hashlib.sha256(f"dunline-qc:{week}".encode()).hexdigest()[:16]


def check_seed(value: object, week: Week) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_seed(week)
    if not isinstance(value, str) or not _SEED.fullmatch(value.strip()):
        raise QcRefused("seed", max=SEED_MAX)
    return value.strip()


def check_size(value: object, default: int = DEFAULT_SAMPLE_SIZE) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,4}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAMPLE_SIZE:
        raise QcRefused("size", max=MAX_SAMPLE_SIZE)
    return value


def rank(seed: str, week: Week | str, collector: str, attempt_id: str) -> str:
    return hashlib.sha256(f"{seed}:{week}:{collector}:{attempt_id}".encode()).hexdigest()


def pick_sample(candidates: Iterable[str], *, seed: str, week: Week | str, collector: str,
                size: int) -> tuple[str, ...]:
    """The sample: the `size` candidates (attempt ids) of lowest rank, in rank order."""
    unique = sorted(set(candidates))
    ranked = sorted(unique, key=lambda attempt_id: (rank(seed, week, collector, attempt_id), attempt_id))
    return tuple(ranked[:max(size, 0)])


def candidates_digest(candidates: Sequence[str]) -> str:
    """SHA-256 of the sorted candidates, one a line: what the sample was drawn from."""
    return hashlib.sha256("".join(f"{c}\n" for c in sorted(set(candidates))).encode()).hexdigest()
