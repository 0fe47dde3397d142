"""The console's two languages: every word in both, every word a template uses in the
catalog, money and dates in each locale's own form."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

from console import i18n

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "templates"


def test_every_key_has_both_languages():
    for key, (zh, en) in i18n.MESSAGES.items():
        assert zh.strip() and en.strip(), key
        assert set(re.findall(r"\{(\w+)\}", zh)) == set(re.findall(r"\{(\w+)\}", en)), key


def test_every_key_a_template_uses_is_in_the_catalog():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]*\w)["']\s*[,)]""", template.read_text(encoding="utf-8")))
    assert used and used <= set(i18n.MESSAGES), sorted(used - set(i18n.MESSAGES))
    prefixed = set()
    for template in TEMPLATES.glob("*.html"):
        prefixed |= set(re.findall(r"""\bt\(\s*["']([\w.]+\.)["']\s*~""", template.read_text(encoding="utf-8")))
    from cases.assignment import Rule
    from cases.casework import STATUSES
    from cases.complaints import SOURCES, Stage
    from cases.complaints_store import EVENTS
    from cases.dispositions import CODES
    from cases.intake import Relation
    from cases.registers import STEPS, AttachmentKind, Channel, Kind, Recipient, VisitState
    from console.floor_api import PAUSE_CODES
    from dialer.campaigns import VERBS, Mode, Status
    from dialer.floor import SeatState
    from dialer.policy.model import CASE_FLAGS
    from dialer.supervision import SpyMode

    from cases.payments import CreditRule

    values = {"status.": [*STATUSES, "settled"], "payments.rule.": [r.value for r in CreditRule],
              "flag.": CASE_FLAGS, "relation.": [r.value for r in Relation],
              "rule.": [r.value for r in Rule], "reports.by.": ["batch", "arrears_band", "overdue_band"],
              "batches.state.": ["checking", "importing", "done", "refused", "failed"], "dispo.code.": CODES,
              "seat.": [s.value for s in SeatState], "pause.": PAUSE_CODES, "spy.": [m.value for m in SpyMode],
              "campaign.mode.": [m.value for m in Mode], "campaign.status.": [x.value for x in Status],
              "campaign.verb.": list(VERBS),
              "reg.kind.": list(Kind), "reg.relation.": list(Recipient), "reg.channel.": list(Channel),
              "reg.state.": list(VisitState), "reg.step.": list(STEPS), "reg.attachment_kind.": list(AttachmentKind),
              "complaints.show.": ["open", "closed", "all"], "complaints.stage.": [x.value for x in Stage],
              "complaints.source.": SOURCES, "complaint.event.": EVENTS}
    assert prefixed == set(values)
    for prefix, names in values.items():
        for name in names:
            assert prefix + name in i18n.MESSAGES, prefix + name


def test_every_problem_of_a_disposition_and_every_change_it_makes_is_worded():
    from cases.dispositions import PROBLEMS, AddAppointment, CancelAppointment, RaiseFlag, RefuseThirdParty, \
        RetirePhone, change_json

    assert {k for k in i18n.MESSAGES if k.startswith("dispo.problem.")} == {f"dispo.problem.{k}" for k in PROBLEMS}
    samples = (RaiseFlag("dispute"), RefuseThirdParty(1), RetirePhone(1),
               AddAppointment(datetime(2026, 3, 1, tzinfo=timezone.utc), "debtor"), CancelAppointment(1))
    assert {f"dispo.change.{change_json(c)['change']}" for c in samples} | {"dispo.change.none"} \
        == {k for k in i18n.MESSAGES if k.startswith("dispo.change.")}


def test_money_and_dates_in_the_readers_form():
    assert i18n.money(123450, "zh-CN") == "¥1,234.50"
    assert i18n.money(123450, "en") == "CN¥1,234.50"
    assert i18n.day(date(2026, 3, 1), "zh-CN") == "2026年3月1日"
    assert i18n.day(date(2026, 3, 1), "en") == "Mar 1, 2026"
    noon_utc = datetime(2026, 3, 1, 4, 0, tzinfo=timezone.utc)
    assert "12:00" in i18n.moment(noon_utc, "zh-CN"), "shown on the floor's clock (Beijing)"
    assert i18n.translator("en")("home.welcome", name="Li") == "Welcome, Li"
    assert i18n.translator("zh-CN")("home.welcome", name="李") == "欢迎，李"


def test_the_language_is_the_readers_choice_then_their_browsers():
    assert i18n.pick_locale("en", "zh-CN") == "en"
    assert i18n.pick_locale(None, None, accept_language="en-GB,en;q=0.9") == "en"
    assert i18n.pick_locale("klingon", None, accept_language="fr") == "zh-CN"


def test_every_problem_of_a_complaint_is_worded():
    from cases.complaints import PROBLEMS

    assert {k for k in i18n.MESSAGES if k.startswith("complaint.problem.")} == {f"complaint.problem.{k}" for k in PROBLEMS}
