"""The weekly report (cases/weekly_report.py) as files: XLSX (openpyxl: a sheet per grouping,
the compliance summary, the recovery by week; numbers as numbers), charts as PNG and SVG
(matplotlib, Agg: the recovery over the last weeks, the week's recovery per collector), and
PDF (reportlab) in zh-CN or English; `save_week` writes them all into a directory, 0640.

Chinese text needs a CJK TrueType font: WenQuanYi Zen Hei (Debian's fonts-wqy-zenhei,
scripts/bootstrap.sh installs it) or the file $DUNLINE_CJK_FONT names. Without one the PDF
and the charts are in English whatever the locale asked (`pdf_locale` says which), so the
figures are always there to read.

How the figures are written (a reader of the PDF, or a test, finds them so): counts as plain
integers (`1234`); amounts in yuan with a thousands separator and two decimals (`12,345.60`,
`money`); rates as percentages with one decimal (`66.7%`, `rate`; none: `—`); talk time as
h:mm:ss (`talk`). In the XLSX the same figures are numbers: amounts in yuan (cents / 100),
rates as fractions (formatted as percentages; none: an empty cell), talk time in seconds.
"""
from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cases.weekly_report import REPORT_ZONE, Figures, Grouping, WeeklyReport
from storage.files import FILE_MODE, make_dirs, tighten

LOCALES = ("zh-CN", "en")
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/arphic/uming.ttc",  # fonts-arphic-uming
)
PDF_FONT = "DunlineCJK"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHARTS = ("recovery", "collectors")  # the recovery over the last weeks; the week's recovery per collector

# the report's own words (cases/ does not reach the console's catalog): key -> (zh-CN, en)
WORDS: dict[str, tuple[str, str]] = {
    "title": ("每周欠费缴费统计报表", "Weekly arrears and payments report"),
    "week": ("统计周", "Week"),
    "period": ("{start} 至 {end}（北京时间）", "{start} to {end} (Beijing time)"),
    "as_of": ("数据截至 {when}", "Figures as of {when}"),
    "scope": ("范围：{scope}", "Scope: {scope}"),
    "scope.all": ("全部案件", "every case"),
    "by.batch": ("按委托批次", "By batch"),
    "by.team": ("按团队", "By team"),
    "by.collector": ("按催收员", "By collector"),
    "none.batch": ("（无批次）", "(no batch)"),
    "none.team": ("（无团队）", "(no team)"),
    "none.collector": ("（无催收员）", "(no collector)"),
    "total": ("合计", "Total"),
    "col.group.batch": ("委托批次", "Batch"),
    "col.group.team": ("团队", "Team"),
    "col.group.collector": ("催收员", "Collector"),
    "col.cases": ("案件数", "Cases"),
    "col.arrears": ("欠费金额（元）", "Arrears (yuan)"),
    "col.attempts": ("拨打次数", "Attempts"),
    "col.contacts": ("接通次数", "Contacts"),
    "col.contact_rate": ("接通率", "Contact rate"),
    "col.talk_seconds": ("通话时长（秒）", "Talk time (s)"),
    "col.talk": ("通话时长", "Talk time"),
    "col.promises": ("承诺缴费", "Promises"),
    "col.promised": ("承诺金额（元）", "Promised (yuan)"),
    "col.promises_kept": ("已履约", "Kept"),
    "col.promises_broken": ("未履约", "Broken"),
    "col.promises_pending": ("未到期", "Pending"),
    "col.promise_kept_rate": ("履约率", "Kept rate"),
    "col.recovered": ("回款金额（元）", "Recovered (yuan)"),
    "col.recovery_rate": ("回款率", "Recovery rate"),
    "col.complaints": ("投诉", "Complaints"),
    "compliance": ("合规摘要", "Compliance summary"),
    "c.attempts": ("本周拨打", "Calls placed"),
    "c.outside_rules": ("违规呼叫", "Calls outside the rules"),
    "c.not_allowed": ("其中：未获准拨打", "of which not allowed"),
    "c.outside_window": ("其中：超出 8:00–21:00", "of which outside 08:00–21:00"),
    "c.answered": ("接听的通话", "Answered calls"),
    "c.recorded": ("有录音", "Recorded"),
    "c.in_ingest": ("录音入库中", "Recording being archived"),
    "c.unrecorded": ("无录音通话", "Unrecorded calls"),
    "c.recordings_verified": ("已验证录音", "Recordings verified"),
    "c.clean": ("本周无违规、无漏录，录音均已验证。", "No call broke the rules, every call was recorded, "
                                            "every recording verified."),
    "c.not_clean": ("本周有需要跟进的合规问题，见上表。", "Some calls need following up: see above."),
    "chart.recovery": ("近 {n} 周回款（元）", "Recovered over the last {n} weeks (yuan)"),
    "chart.collectors": ("本周各催收员回款（元）", "Recovered this week per collector (yuan)"),
    "chart.nothing": ("本周无回款", "Nothing recovered this week"),
    "weeks": ("每周回款", "Recovery by week"),
    "key": ("项目", "Item"),
    "value": ("数值", "Value"),
    "recovered_week": ("回款金额（元）", "Recovered (yuan)"),
}

# the tables' columns, in order: (key, word, kind); kind says how it is written
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cases", "col.cases", "count"), ("arrears_cents", "col.arrears", "money"),
    ("attempts", "col.attempts", "count"), ("contacts", "col.contacts", "count"),
    ("contact_rate", "col.contact_rate", "rate"), ("talk_seconds", "col.talk_seconds", "talk"),
    ("promises", "col.promises", "count"), ("promised_cents", "col.promised", "money"),
    ("promises_kept", "col.promises_kept", "count"), ("promises_broken", "col.promises_broken", "count"),
    ("promises_pending", "col.promises_pending", "count"), ("promise_kept_rate", "col.promise_kept_rate", "rate"),
    ("recovered_cents", "col.recovered", "money"), ("recovery_rate", "col.recovery_rate", "rate"),
    ("complaints", "col.complaints", "count"),
)
# the PDF's narrower table (a landscape page): every figure the issue names
PDF_COLUMNS = ("cases", "arrears_cents", "attempts", "contacts", "contact_rate", "talk_seconds", "promises",
               "promises_kept", "promise_kept_rate", "recovered_cents", "recovery_rate", "complaints")
COMPLIANCE_ROWS = ("attempts", "outside_rules", "not_allowed", "outside_window", "answered", "recorded",
                   "in_ingest", "unrecorded", "recordings_verified")


def words(locale: str) -> Callable[..., str]:
    index = 0 if locale == "zh-CN" else 1

    def w(key: str, **values: object) -> str:
        text = WORDS[key][index]
        return text.format(**values) if values else text

    return w


# -- how figures are written ------------------------------------------------------------------

def money(cents: int) -> str:
    """12,345.60 (yuan)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d}"


def rate(value: float | None) -> str:
    """66.7% (one decimal, halves away from zero as Python's format rounds the binary value); None: —."""
    return "—" if value is None else f"{value * 100:.1f}%"


def talk(seconds: int) -> str:
    """h:mm:ss."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def written(figures: Figures, key: str) -> str:
    """One figure as the PDF and the page write it."""
    value = getattr(figures, key)
    kind = next(k for name, _, k in COLUMNS if name == key)
    if kind == "money":
        return money(value)
    if kind == "rate":
        return rate(value)
    if kind == "talk":
        return talk(value)
    return str(value)


def group_label(figures: Figures, by: Grouping, locale: str) -> str:
    w = words(locale)
    if figures.group == "total":
        return w("total")
    return figures.group if figures.group is not None else w(f"none.{by.value}")


# -- fonts -------------------------------------------------------------------------------------

def cjk_font() -> Path | None:
    """A CJK TrueType font: $DUNLINE_CJK_FONT, else one of Debian's (None: none here)."""
    named = os.environ.get("DUNLINE_CJK_FONT")
    for candidate in ((named,) if named else ()) + CJK_FONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def pdf_locale(locale: str) -> str:
    """The language the files are written in: the one asked, English without a CJK font."""
    return locale if locale == "en" or cjk_font() is not None else "en"


@lru_cache(maxsize=1)
def _pdf_font() -> str:
    font = cjk_font()
    if font is None:
        return "Helvetica"
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont(PDF_FONT, str(font), subfontIndex=0))
    return PDF_FONT


# -- XLSX ------------------------------------------------------------------------------------

def _cell(figures: Figures, key: str) -> Any:
    value = getattr(figures, key)
    kind = next(k for name, _, k in COLUMNS if name == key)
    if kind == "money":
        return value / 100
    return value  # a rate: a fraction or None (an empty cell)


def report_xlsx(report: WeeklyReport, locale: str = "zh-CN") -> bytes:
    """Sheets `summary` (the week, the totals), `batch`, `team`, `collector` (a row per group,
    then `total`; columns as COLUMNS), `compliance` (key, words, value) and `weeks` (the
    recovery by week). Sheet names and the compliance keys are the same in both languages."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    w = words(locale)
    book = Workbook()
    summary = book.active
    summary.title = "summary"
    summary.append([w("title")])
    summary["A1"].font = Font(bold=True, size=14)
    for key, value in (("week", report.week.label), ("period", _period(report, locale)),
                       ("as_of", _as_of(report, locale)), ("scope", report.scope or w("scope.all"))):
        summary.append([key, value])
    summary.append([])
    summary.append(["key", w("key"), w("total")])
    for key, word, _ in COLUMNS:
        summary.append([key, w(word), _cell(report.total, key)])
        _number_format(summary.cell(summary.max_row, 3), key)
    for grouping in Grouping:
        sheet = book.create_sheet(grouping.value)
        sheet.append([w(f"col.group.{grouping.value}"), *(w(word) for _, word, _ in COLUMNS)])
        for row in (*report.groups[grouping], report.total):
            sheet.append([group_label(row, grouping, locale), *(_cell(row, key) for key, _, _ in COLUMNS)])
        for column, (key, _, _) in enumerate(COLUMNS, start=2):
            for cells in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                _number_format(cells[0], key)
        sheet.freeze_panes = "B2"
        sheet.column_dimensions["A"].width = 24
    comp = book.create_sheet("compliance")
    comp.append(["key", w("key"), w("value")])
    for key in COMPLIANCE_ROWS:
        comp.append([key, w(f"c.{key}"), getattr(report.compliance, key)])
    weeks = book.create_sheet("weeks")
    weeks.append([w("week"), w("recovered_week")])
    for r in report.recovery_by_week:
        weeks.append([r.week.label, r.recovered_cents / 100])
        weeks.cell(weeks.max_row, 2).number_format = "#,##0.00"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _number_format(cell: Any, key: str) -> None:
    kind = next(k for name, _, k in COLUMNS if name == key)
    if kind == "money":
        cell.number_format = "#,##0.00"
    elif kind == "rate":
        cell.number_format = "0.0%"


def _period(report: WeeklyReport, locale: str) -> str:
    return words(locale)("period", start=report.week.first_day.isoformat(), end=report.week.last_day.isoformat())


def _as_of(report: WeeklyReport, locale: str) -> str:
    return words(locale)("as_of", when=report.as_of.astimezone(REPORT_ZONE).strftime("%Y-%m-%d %H:%M"))


# -- charts ------------------------------------------------------------------------------------

_CHART_LOCK = threading.Lock()  # matplotlib's rc settings are process-wide


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # one of CHARTS
    png: bytes
    svg: bytes


def _font_family() -> list[str]:
    font = cjk_font()
    if font is None:
        return ["DejaVu Sans"]
    from matplotlib import font_manager

    # WenQuanYi Zen Hei has one weight (500): matplotlib says so for every text it asks "normal" of
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    font_manager.fontManager.addfont(str(font))
    return [font_manager.FontProperties(fname=str(font)).get_name(), "DejaVu Sans"]


def chart(report: WeeklyReport, name: str, fmt: str, locale: str = "zh-CN") -> bytes:
    """One chart (`name` of CHARTS) as PNG or SVG bytes."""
    if name not in CHARTS or fmt not in ("png", "svg"):
        raise ValueError(f"no chart {name}.{fmt}")
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    locale = pdf_locale(locale)
    w = words(locale)
    with _CHART_LOCK, matplotlib.rc_context({"font.family": _font_family(), "svg.hashsalt": "dunline",
                                             "axes.spines.top": False, "axes.spines.right": False}):
        collectors = sum(1 for r in report.groups[Grouping.COLLECTOR] if r.recovered_cents)
        height = 3.4 if name == "recovery" else min(max(2.2, 1.2 + 0.35 * collectors), 12)
        figure = Figure(figsize=(7.5, height), dpi=110)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        if name == "recovery":
            weeks = report.recovery_by_week
            labels = [r.week.label[2:] for r in weeks]
            values = [r.recovered_cents / 100 for r in weeks]
            colours = ["#0b5cad" if r.week == report.week else "#9cb8d6" for r in weeks]
            bars = axes.bar(labels, values, color=colours)
            axes.set_title(w("chart.recovery", n=len(weeks)))
        else:
            rows = [r for r in report.groups[Grouping.COLLECTOR] if r.recovered_cents]
            rows.sort(key=lambda r: r.recovered_cents)
            labels = [group_label(r, Grouping.COLLECTOR, locale) for r in rows]
            values = [r.recovered_cents / 100 for r in rows]
            bars = axes.barh(labels, values, color="#1e6b35", height=0.6)
            axes.set_title(w("chart.collectors"))
            if not rows:
                axes.text(0.5, 0.5, w("chart.nothing"), ha="center", va="center", transform=axes.transAxes)
                axes.set_yticks([])
        axes.bar_label(bars, labels=[money(round(v * 100)) for v in values], fontsize=7, padding=2)
        axes.margins(x=0.12 if name == "collectors" else 0.02, y=0.15 if name == "recovery" else 0.05)
        axes.tick_params(labelsize=8)
        figure.tight_layout()
        out = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def charts(report: WeeklyReport, locale: str = "zh-CN") -> tuple[Chart, ...]:
    return tuple(Chart(name, chart(report, name, "png", locale), chart(report, name, "svg", locale))
                 for name in CHARTS)


# -- PDF -------------------------------------------------------------------------------------

def report_pdf(report: WeeklyReport, locale: str = "zh-CN", pngs: Sequence[bytes] | None = None) -> bytes:
    """The report on landscape A4 pages: the week and scope, the compliance summary, a table
    per grouping (PDF_COLUMNS, a total row each), the charts (`pngs`, made if not given)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    locale = pdf_locale(locale)
    w = words(locale)
    font = _pdf_font()
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, spaceAfter=4)
    heading = ParagraphStyle("heading", fontName=font, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=13)
    grid = [("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 7.5),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b8c0")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f6")),
            ("ALIGN", (1, 1), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]
    story: list[Any] = [
        Paragraph(f"{w('title')} {report.week.label}", title),
        Paragraph(f"{w('week')}: {report.week.label} · {_period(report, locale)} · {_as_of(report, locale)}", body),
        Paragraph(w("scope", scope=report.scope or w("scope.all")), body),
        Paragraph(w("compliance"), heading),
    ]
    c = report.compliance
    comp = Table([[w("key"), w("value")], *([w(f"c.{key}"), str(getattr(c, key))] for key in COMPLIANCE_ROWS)],
                 colWidths=(70 * mm, 30 * mm), hAlign="LEFT")
    comp.setStyle(TableStyle(grid))
    story += [comp, Spacer(1, 2 * mm), Paragraph(w("c.clean") if c.clean else w("c.not_clean"), body)]
    headers = {key: w(word) for key, word, _ in COLUMNS}
    headers["talk_seconds"] = w("col.talk")
    for grouping in Grouping:
        data = [[w(f"col.group.{grouping.value}"), *(headers[k] for k in PDF_COLUMNS)]]
        for row in (*report.groups[grouping], report.total):
            data.append([group_label(row, grouping, locale), *(written(row, k) for k in PDF_COLUMNS)])
        widths = [24 * mm if k.endswith("_cents") else 18.5 * mm for k in PDF_COLUMNS]
        table = Table(data, repeatRows=1, hAlign="LEFT", colWidths=(36 * mm, *widths))
        table.setStyle(TableStyle([*grid, ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f6f8fa"))]))
        story += [Paragraph(w(f"by.{grouping.value}"), heading), table]
    images = pngs if pngs is not None else [chart(report, name, "png", locale) for name in CHARTS]
    for png in images:
        width, height = ImageReader(io.BytesIO(png)).getSize()
        story.append(KeepTogether([Spacer(1, 4 * mm), Image(io.BytesIO(png), width=165 * mm,
                                                            height=165 * mm * height / width)]))
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm, title=f"{w('title')} {report.week.label}",
                            author="dunline", invariant=1)
    doc.build(story)
    return out.getvalue()


# -- the files of a week --------------------------------------------------------------------

def file_names(report: WeeklyReport) -> dict[str, str]:
    week = report.week.label
    return {"pdf": f"weekly-{week}.pdf", "xlsx": f"weekly-{week}.xlsx",
            **{f"{name}.{fmt}": f"{name}-{week}.{fmt}" for name in CHARTS for fmt in ("png", "svg")}}


def _write(path: Path, data: bytes) -> None:
    """Written whole (a temporary file renamed over it), 0640 whatever the umask."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    tighten(path)


def save_week(report: WeeklyReport, directory: Path, locale: str = "zh-CN") -> dict[str, Path]:
    """Write the PDF, the XLSX and both charts (PNG and SVG) into `directory` (made 0750 if
    missing); returns what was written, by kind (pdf, xlsx, recovery.png, ...)."""
    directory = Path(directory)
    make_dirs(directory)
    made = charts(report, locale)
    content = {"pdf": report_pdf(report, locale, [c.png for c in made]), "xlsx": report_xlsx(report, locale)}
    for c in made:
        content[f"{c.name}.png"], content[f"{c.name}.svg"] = c.png, c.svg
    names = file_names(report)
    written_paths = {}
    for kind, data in content.items():
        _write(directory / names[kind], data)
        written_paths[kind] = directory / names[kind]
    return written_paths
