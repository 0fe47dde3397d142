"""Which time zone(s) a debtor may be in.

Order of evidence: the case's explicit IANA ``timezone``; else its ``region`` (a small
table, plus the client's ``extra_regions``); else the phone number's prefix.  The
result is a frozenset of candidate zones: more than one means "unclear" and the window
must hold in all of them; empty means unknown (the caller blocks).

An explicit but invalid ``timezone`` yields the empty set (it does not fall back to the
region: bad data is a reason to stop, not to guess).  An unknown region does fall back
to the phone number.

A third party's number (a relative, an employer, a reference) is judged by its own
prefix first: the case's zone is the debtor's, not theirs.  Only when the number says
nothing does the case's evidence apply (a relative usually lives near the debtor).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SHANGHAI = "Asia/Shanghai"
_CN = frozenset({SHANGHAI})

_CN_REGIONS = (
    "cn china 中国 beijing 北京 shanghai 上海 tianjin 天津 chongqing 重庆 guangdong 广东 "
    "guangzhou 广州 shenzhen 深圳 zhejiang 浙江 hangzhou 杭州 jiangsu 江苏 nanjing 南京 "
    "sichuan 四川 chengdu 成都 hubei 湖北 wuhan 武汉 hunan 湖南 henan 河南 hebei 河北 "
    "shandong 山东 fujian 福建 anhui 安徽 jiangxi 江西 shanxi 山西 shaanxi 陕西 "
    "liaoning 辽宁 jilin 吉林 heilongjiang 黑龙江 yunnan 云南 guizhou 贵州 guangxi 广西 "
    "hainan 海南 gansu 甘肃 qinghai 青海 ningxia 宁夏 inner mongolia 内蒙古 "
    "xinjiang 新疆 tibet 西藏"
)

_US_REGIONS: dict[str, frozenset[str]] = {
    "ca": frozenset({"America/Los_Angeles"}),
    "ny": frozenset({"America/New_York"}),
    "fl": frozenset({"America/New_York", "America/Chicago"}),  # panhandle is Central
    "tx": frozenset({"America/Chicago", "America/Denver"}),  # El Paso is Mountain
    "il": frozenset({"America/Chicago"}),
    "az": frozenset({"America/Phoenix"}),
    "wa": frozenset({"America/Los_Angeles"}),
}


def _build_regions() -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    # Multi-word names first, then single tokens.
    table["inner mongolia"] = _CN
    for token in _CN_REGIONS.replace("inner mongolia", "").split():
        table[token] = _CN
    table.update(_US_REGIONS)
    return table


REGIONS: dict[str, frozenset[str]] = _build_regions()

# A few North American area codes; 850 (Florida panhandle) straddles two zones.
NANP_AREA_CODES: dict[str, frozenset[str]] = {
    "212": frozenset({"America/New_York"}),
    "305": frozenset({"America/New_York"}),
    "213": frozenset({"America/Los_Angeles"}),
    "415": frozenset({"America/Los_Angeles"}),
    "312": frozenset({"America/Chicago"}),
    "512": frozenset({"America/Chicago"}),
    "915": frozenset({"America/Denver"}),
    "602": frozenset({"America/Phoenix"}),
    "850": frozenset({"America/New_York", "America/Chicago"}),
}

_CN_MOBILE = re.compile(r"1[3-9]\d{9}")


@lru_cache(maxsize=256)
def is_valid_zone(name: str) -> bool:
    """True when ``name`` is a key of the IANA database available here."""
    if not isinstance(name, str) or not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=256)
def get_zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for a name already known to be valid."""
    return ZoneInfo(name)


def zones_for_region(
    region: str, extra: Iterable[tuple[str, frozenset[str]]] = ()
) -> frozenset[str]:
    """Candidate zones of a region name or code (case-insensitive); empty if unknown."""
    key = " ".join(region.split()).casefold()
    for name, zones in extra:
        if " ".join(name.split()).casefold() == key:
            return frozenset(zones)
    return REGIONS.get(key, frozenset())


def zones_for_number(number: str) -> frozenset[str]:
    """Candidate zones from a phone number's prefix; empty if unknown.

    ``+86``/``0086``/``86`` + mobile, or a bare 11-digit ``1[3-9]...`` mobile, is China.
    Only an explicit ``+1``/``001`` prefix is read as North American (a bare
    ``1xxxxxxxxxx`` is a Chinese mobile for this client).
    """
    raw = number.strip()
    plus = raw.startswith("+")
    digits = re.sub(r"\D", "", raw)
    if not plus and digits.startswith("00"):
        digits, plus = digits[2:], True
    if plus:
        if digits.startswith("86"):
            return _CN if len(digits) >= 10 else frozenset()
        if digits.startswith("1") and len(digits) == 11:
            return NANP_AREA_CODES.get(digits[1:4], frozenset())
        return frozenset()
    if _CN_MOBILE.fullmatch(digits):
        return _CN
    if digits.startswith("86") and _CN_MOBILE.fullmatch(digits[2:]):
        return _CN
    return frozenset()


def candidate_zones(
    timezone: str | None,
    region: str | None,
    number: str,
    extra_regions: Iterable[tuple[str, frozenset[str]]] = (),
    *,
    third_party: bool = False,
) -> frozenset[str]:
    """All zones the callee may be in (see module docstring); empty means unknown."""
    if third_party and (own := zones_for_number(number)):
        return own
    if timezone is not None and timezone.strip():
        return frozenset({timezone}) if is_valid_zone(timezone) else frozenset()
    if region is not None and region.strip():
        found = zones_for_region(region, extra_regions)
        if found:
            return frozenset(z for z in found if is_valid_zone(z))
    return zones_for_number(number)
