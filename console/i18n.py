"""The console's words in zh-CN and English, and dates and money in the reader's locale
(Babel). One catalog in code: a test fails when a key lacks a language or a template
uses a key the catalog does not have. Pure: no I/O."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")  # the floor's clock: times are shown in it

MESSAGES: dict[str, tuple[str, str]] = {  # key: (zh-CN, en)
    "app": ("dunline 催收外呼", "dunline collections"),
    "nav.cases": ("案件", "Cases"),
    "nav.batches": ("委托批次", "Batches"),
    "nav.assignment": ("分案", "Assignment"),
    "nav.rules": ("拨打规则", "Dialing rules"),
    "nav.users": ("用户与团队", "Users and teams"),
    "nav.sign_out": ("退出", "Sign out"),
    "nav.language": ("English", "中文"),
    "login.title": ("登录", "Sign in"),
    "login.username": ("用户名", "User name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.refused": ("用户名或密码错误，或账户已停用", "Wrong user name or password, or the account is disabled"),
    "login.throttled": ("尝试次数过多，请稍后再试", "Too many tries: wait a moment and try again"),
    "home.welcome": ("欢迎，{name}", "Welcome, {name}"),
    "home.role": ("角色：{role}", "Role: {role}"),
    "cases.title": ("案件", "Cases"),
    "cases.search": ("搜索（案件号、账号、电话、姓名）", "Search (case, account, phone, name)"),
    "cases.status": ("状态", "Status"),
    "cases.any": ("全部", "Any"),
    "cases.find": ("查找", "Find"),
    "cases.none": ("没有符合条件的案件", "No cases match"),
    "cases.next": ("下一页", "Next page"),
    "col.case": ("案件号", "Case"),
    "col.debtor": ("债务人", "Debtor"),
    "col.arrears": ("欠款金额", "Arrears"),
    "col.overdue": ("逾期日期", "Overdue since"),
    "col.status": ("状态", "Status"),
    "col.batch": ("批次", "Batch"),
    "col.phones": ("电话", "Phones"),
    "col.flags": ("标记", "Flags"),
    "col.collector": ("催收员", "Collector"),
    "col.number": ("号码", "Number"),
    "col.relation": ("关系", "Relation"),
    "col.when": ("时间", "When"),
    "col.outcome": ("结果", "Outcome"),
    "col.rule": ("规则", "Rule"),
    "col.reason": ("原因", "Reason"),
    "col.row": ("行", "Row"),
    "col.column": ("列", "Column"),
    "col.problem": ("问题", "Problem"),
    "col.client": ("委托方", "Client"),
    "col.cases": ("案件数", "Cases"),
    "col.open": ("在催", "Open"),
    "col.user": ("用户", "User"),
    "col.role": ("角色", "Role"),
    "col.team": ("团队", "Team"),
    "col.state": ("状态", "State"),
    "status.open": ("在催", "open"),
    "status.returned": ("已退案", "returned"),
    "status.closed": ("已结案", "closed"),
    "relation.own": ("本人", "own"),
    "relation.family": ("家人", "family"),
    "relation.work": ("单位", "work"),
    "relation.third_party": ("第三方", "third party"),
    "flag.dispute": ("争议", "dispute"),
    "flag.fraud": ("疑似欺诈", "fraud"),
    "flag.care": ("特殊关怀", "care"),
    "case.title": ("案件 {id}", "Case {id}"),
    "case.id_number": ("身份证号", "ID number"),
    "case.address": ("地址", "Address"),
    "case.phones": ("电话", "Phones"),
    "case.attempts": ("拨打记录", "Calls"),
    "case.decisions": ("拨打规则判定", "Dialing decisions"),
    "case.recordings": ("录音 {count} 条", "{count} recordings"),
    "case.dial": ("拨打", "Dial"),
    "case.dial_refused": ("不可拨打：{rule} — {reason}", "Not dialled: {rule} — {reason}"),
    "case.dialled": ("已发起呼叫 {id}", "Call placed: {id}"),
    "case.add_phone": ("添加电话（修复）", "Add a phone (tracing)"),
    "case.flag": ("添加标记", "Raise a flag"),
    "case.clear": ("解除", "Clear"),
    "case.dnc": ("加入禁呼", "Do not call"),
    "case.refused": ("第三方拒接", "Third party refused"),
    "case.change_status": ("退案 / 结案 / 重开", "Return / close / reopen"),
    "case.why": ("原因", "Reason"),
    "case.save": ("保存", "Save"),
    "case.assign_to": ("分配给", "Assign to"),
    "batches.title": ("委托批次", "Batches"),
    "batches.upload": ("导入批次文件（.xlsx / CSV）", "Import a batch file (.xlsx / CSV)"),
    "batches.client": ("委托方", "Client"),
    "batches.batch": ("批次号（文件无批次列时）", "Batch id (when the file has no batch column)"),
    "batches.file": ("文件", "File"),
    "batches.import": ("导入", "Import"),
    "batches.progress": ("导入进度", "Import progress"),
    "batches.rows": ("{done} / {total} 行", "{done} / {total} rows"),
    "batches.summary": ("导入 {imported} 行，未变 {unchanged} 行，拒绝 {rejected} 行",
                        "{imported} imported, {unchanged} unchanged, {rejected} refused"),
    "batches.errors": ("错误报告", "Error report"),
    "batches.download": ("下载错误报告（CSV）", "Download the error report (CSV)"),
    "batches.state.checking": ("检查中", "checking"),
    "batches.state.importing": ("导入中", "importing"),
    "batches.state.done": ("完成", "done"),
    "batches.state.refused": ("文件被拒绝", "file refused"),
    "batches.state.failed": ("失败", "failed"),
    "assign.title": ("分案", "Assignment"),
    "assign.workload": ("工作量", "Workload"),
    "assign.rule": ("规则", "Rule"),
    "assign.batch": ("批次", "Batch"),
    "assign.run": ("分配", "Assign"),
    "assign.done": ("已分配 {placed} 件，未分配 {unrouted} 件", "{placed} assigned, {unrouted} left unassigned"),
    "rule.round_robin": ("轮流分配", "round robin"),
    "rule.amount_band": ("按金额段", "by amount band"),
    "rule.overdue_band": ("按逾期段", "by overdue band"),
    "rule.region": ("按地区", "by region"),
    "rules.title": ("拨打规则", "Dialing rules"),
    "rules.dnc": ("禁呼名单", "Do-not-call list"),
    "rules.add": ("添加", "Add"),
    "rules.remove": ("移除", "Remove"),
    "rules.caller_ids": ("外显号码", "Caller IDs"),
    "rules.withdraw": ("停用", "Withdraw"),
    "users.title": ("用户与团队", "Users and teams"),
    "users.add": ("添加用户", "Add a user"),
    "users.add_team": ("添加团队", "Add a team"),
    "users.display_name": ("显示名", "Name shown"),
    "users.disabled": ("已停用", "disabled"),
    "users.active": ("正常", "active"),
    "users.disable": ("停用", "Disable"),
    "users.enable": ("启用", "Enable"),
    "nav.reports": ("报表", "Reports"),
    "reports.title": ("案件报表", "Case reports"),
    "reports.by.batch": ("按委托批次", "By batch"),
    "reports.by.arrears_band": ("按欠费金额", "By arrears"),
    "reports.by.overdue_band": ("按逾期时间", "By overdue age"),
    "reports.attempted": ("已拨打", "Attempted"),
    "reports.contacted": ("已接通", "Contacted"),
    "reports.contact_rate": ("接通率", "Contact rate"),
    "reports.calls": ("呼叫次数", "Calls"),
    "reports.total": ("合计", "Total"),
    "recordings.title": ("案件 {id} 的录音", "Recordings of case {id}"),
    "recordings.why": ("调听原因（记入账本）", "Why you listen (kept in the ledger)"),
    "recordings.open": ("查看录音", "Open the recordings"),
    "recordings.logged": ("本次调阅已记录，原因：{why}", "This access is logged, with the reason: {why}"),
    "recordings.length": ("时长", "Length"),
    "done": ("完成", "Done"),
    "error": ("未完成：{message}", "Not done: {message}"),
    "forbidden": ("您的角色无权访问此页面", "Your role may not open this page"),
}


def translator(locale: str) -> Callable[..., str]:
    index = 0 if locale == "zh-CN" else 1

    def t(key: str, **values: object) -> str:
        text = MESSAGES[key][index] if key in MESSAGES else key
        return text.format(**values) if values else text

    return t


def babel_locale(locale: str) -> str:
    return "zh_CN" if locale == "zh-CN" else "en_US"


def money(cents: int | None, locale: str) -> str:
    if cents is None:
        return "-"
    return format_currency(cents / 100, "CNY", locale=babel_locale(locale))


def number(value: int | float, locale: str) -> str:
    return format_decimal(value, locale=babel_locale(locale))


def day(value: date | None, locale: str) -> str:
    return format_date(value, format="medium", locale=babel_locale(locale)) if value else "-"


def moment(value: datetime | None, locale: str) -> str:
    if value is None:
        return "-"
    return format_datetime(value.astimezone(DISPLAY_ZONE), format="medium", locale=babel_locale(locale))


def pick_locale(*candidates: str | None, accept_language: str = "") -> str:
    """The first candidate that is a locale we speak, else from Accept-Language, else zh-CN."""
    for candidate in candidates:
        if candidate in LOCALES:
            return candidate  # type: ignore[return-value]
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh-CN"
    return DEFAULT_LOCALE
