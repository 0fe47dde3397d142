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
    "nav.follow_ups": ("到期承诺", "Promises due"),
    "nav.floor": ("我的坐席", "My seat"),
    "nav.wallboard": ("监控大屏", "Wallboard"),
    "floor.title": ("我的坐席", "My seat on the floor"),
    "floor.off": ("本节点未启用坐席（floor.seats）：来电直接振铃话机", "Seats are off on this node (floor.seats): calls ring a phone"),
    "floor.no_phone": ("您还没有话机：请管理员设置（dunline user set 用户名 --phone 分机）", "You have no phone: an admin sets it (dunline user set NAME --phone EXT)"),
    "floor.my_phone": ("我的话机：{phone}", "My phone: {phone}"),
    "floor.seat": ("坐席", "Seat"),
    "floor.state": ("状态", "State"),
    "floor.since": ("持续", "For"),
    "floor.phone": ("话机", "Phone"),
    "floor.no_seat": ("尚未签入：点击“签入”，话机会振铃一次，接听后即可接听外呼", "Not on the floor: open a seat, your phone rings once; answer it and calls come to you"),
    "floor.open_seat": ("签入（话机振铃）", "Open a seat (my phone rings)"),
    "floor.pause": ("暂停", "Pause"),
    "floor.ready": ("就绪", "Ready"),
    "floor.hint": ("接通后本页会自动打开该案件", "When a call is put through, its case opens here by itself"),
    "floor.ringing": ("正在呼叫您的话机 {phone}，请接听", "Ringing your phone {phone}: answer it"),
    "floor.bad_code": ("请选择暂停原因", "Choose a pause reason"),
    "floor.paused": ("已暂停：{code}", "Paused: {code}"),
    "floor.paused_other": ("已暂停 {user}：{code}", "Paused {user}: {code}"),
    "floor.is_ready": ("已就绪", "Ready"),
    "floor.on_call": ("通话中：本案件", "On a call: this case"),
    "floor.back": ("返回坐席", "Back to my seat"),
    "floor.wrap_up_left": ("话后处理：{seconds} 秒后自动就绪", "Wrap-up: ready again in {seconds} s"),
    "floor.wrap_up_open": ("话后处理：{seconds} 秒（录完处理结果后点“就绪”）", "Wrap-up: {seconds} s (press Ready when the outcome is recorded)"),
    "floor.ready_now": ("处理完毕，就绪", "Done: ready"),
    "floor.no_call": ("该通话已不在坐席上", "That call is not on the floor now"),
    "floor.no_collector": ("没有该催收员", "No such collector on your floor"),
    "floor.monitoring": ("{mode}：正在呼叫您的话机 {phone}", "{mode}: ringing your phone {phone}"),
    "seat.connecting": ("呼叫话机中", "Ringing the phone"),
    "seat.ready": ("就绪", "Ready"),
    "seat.reserved": ("分配中", "Call coming"),
    "seat.on_call": ("通话中", "On a call"),
    "seat.wrap_up": ("话后处理", "Wrap-up"),
    "seat.paused": ("暂停", "Paused"),
    "pause.break": ("休息", "Break"),
    "pause.lunch": ("用餐", "Lunch"),
    "pause.training": ("培训", "Training"),
    "pause.meeting": ("会议", "Meeting"),
    "pause.coaching": ("辅导", "Coaching"),
    "pause.technical": ("技术问题", "Technical problem"),
    "spy.listen": ("监听", "Listen"),
    "spy.whisper": ("耳语", "Whisper"),
    "spy.barge": ("强插", "Barge"),
    "wallboard.title": ("监控大屏", "Wallboard"),
    "wallboard.summary": ("坐席 {seats} · 就绪 {ready} · 通话中 {on_call}", "Seats {seats} · ready {ready} · on a call {on_call}"),
    "wallboard.empty": ("没有坐席签入", "Nobody is on the floor"),
    "wallboard.pause": ("暂停（辅导）", "Pause (coaching)"),
    "wallboard.monitoring": ("正在监控", "Monitoring now"),
    "wallboard.gate_open": ("拨号闸门：开启", "Dialing gate: open"),
    "wallboard.gate_closed": ("拨号闸门：关闭（不会拨出任何电话）", "Dialing gate: closed (no call is placed)"),
    "campaigns.title": ("外呼任务", "Campaigns"),
    "campaigns.name": ("名称", "Name"),
    "campaigns.mode": ("模式", "Mode"),
    "campaigns.status": ("状态", "Status"),
    "campaigns.placed": ("30天拨打", "Dialled (30 days)"),
    "campaigns.answered": ("30天接通", "Answered (30 days)"),
    "campaigns.abandoned": ("30天放弃", "Abandoned (30 days)"),
    "campaigns.rate": ("放弃率 / 上限", "Abandon rate / limit"),
    "campaigns.none": ("没有进行中的外呼任务", "No campaign"),
    "campaigns.hint": ("放弃：接通后2秒内无空闲坐席，对方听到提示音后挂断。暂停或停止的任务不再拨出新电话。",
                       "Abandoned: answered, no collector ready within 2 s, the debtor heard the message. "
                       "A paused or stopped campaign places no new call."),
    "campaigns.changed": ("外呼任务 {name}：{status}", "Campaign {name}: {status}"),
    "campaign.mode.preview": ("预览式", "Preview"),
    "campaign.mode.progressive": ("渐进式", "Progressive"),
    "campaign.mode.predictive": ("预测式", "Predictive"),
    "campaign.status.draft": ("草稿", "Draft"),
    "campaign.status.running": ("进行中", "Running"),
    "campaign.status.paused": ("已暂停", "Paused"),
    "campaign.status.stopped": ("已停止", "Stopped"),
    "campaign.verb.start": ("开始", "Start"),
    "campaign.verb.pause": ("暂停", "Pause"),
    "campaign.verb.stop": ("停止", "Stop"),
    "col.dispositions": ("处理结果", "Dispositions"),
    "col.amount": ("金额", "Amount"),
    "col.entered_by": ("录入人", "Entered by"),
    "case.retired": ("已停用（错号）", "retired (wrong number)"),
    "case.lift": ("恢复使用", "Put back in use"),
    "dispo.code.contacted": ("有联（联系上债务人）", "contacted"),
    "dispo.code.not_contacted": ("无联（未联系上）", "not contacted"),
    "dispo.code.promise_to_pay": ("承诺缴费", "promise to pay"),
    "dispo.code.negotiation_failed": ("谈判无效", "negotiation failed"),
    "dispo.code.dispute": ("否认欠费 / 有异议", "dispute"),
    "dispo.code.fraud": ("涉嫌欺诈、伪冒", "suspected fraud or identity theft"),
    "dispo.code.third_party_consented": ("第三方同意配合", "third party consented"),
    "dispo.code.third_party_refused": ("第三方拒绝配合", "third party refused"),
    "dispo.code.illness_or_pregnancy": ("重大疾病 / 怀孕", "serious illness or pregnancy"),
    "dispo.code.wrong_number": ("错号", "wrong number"),
    "dispo.code.call_back": ("约定时间回拨", "call back at an agreed time"),
    "dispo.record": ("录入处理结果", "Record the outcome"),
    "dispo.code": ("处理结果", "Outcome"),
    "dispo.amount": ("承诺金额（元）", "Amount promised (yuan)"),
    "dispo.promise_date": ("承诺缴费日期", "Promised by"),
    "dispo.callback_at": ("约定时间", "Agreed time"),
    "dispo.local_time": ("对方当地时间（{zone}）", "their local time ({zone})"),
    "dispo.notes": ("备注", "Notes"),
    "dispo.new": ("新录入", "New entry"),
    "dispo.correct": ("更正 #{id}", "Corrects #{id}"),
    "dispo.corrected_by": ("已被 #{id} 更正", "corrected by #{id}"),
    "dispo.by_date": ("{date} 前", "by {date}"),
    "dispo.at_time": ("约定 {time}", "at {time}"),
    "dispo.saved": ("已保存 #{id}（{code}）：{changes}", "Saved #{id} ({code}): {changes}"),
    "dispo.change.flag": ("案件暂停：{flag}", "case paused: {flag}"),
    "dispo.change.third_party_refused": ("该第三方号码不再拨打", "this third party's number is no longer called"),
    "dispo.change.phone_retired": ("该号码停用（错号）", "this number is retired (wrong number)"),
    "dispo.change.appointment": ("约定时间已登记，届时允许拨打", "agreed time booked: a call is allowed then"),
    "dispo.change.appointment_cancelled": ("原约定时间已取消", "the earlier agreed time is cancelled"),
    "dispo.change.none": ("拨打规则无变化", "no change to the dialing rules"),
    "dispo.problem.code": ("处理结果：应为以下之一 {codes}", "code: one of {codes}"),
    "dispo.problem.needs_answer": ("“{code}”须是已接通的通话；此通话未接通（请录入“无联”）",
                                   "{code} needs an answered call; this call was not answered (record not contacted)"),
    "dispo.problem.amount": ("金额：大于 0 的元数，最多两位小数（如 500 或 1234.50）",
                             "amount: a sum in yuan above 0, at most two decimals (e.g. 500 or 1234.50)"),
    "dispo.problem.amount_over": ("金额：超过欠款（{arrears} 元），请核对", "amount: more than the arrears ({arrears} yuan); check the amount"),
    "dispo.problem.promise_date": ("承诺缴费日期：请填写日期（年-月-日）", "promise_date: a date, YYYY-MM-DD"),
    "dispo.problem.promise_past": ("承诺缴费日期：不能早于今天（{today}，债务人当地日期）",
                                   "promise_date: not before today ({today}, the debtor's date)"),
    "dispo.problem.promise_far": ("承诺缴费日期：须在 {days} 天之内", "promise_date: within {days} days"),
    "dispo.problem.callback_at": ("约定时间：请填写日期和时间（对方当地时间）",
                                  "callback_at: a date and time, YYYY-MM-DDTHH:MM (the debtor's local time)"),
    "dispo.problem.callback_zone": ("约定时间：对方时区不明，请给出带时差的时间（如 +08:00）",
                                    "callback_at: the debtor's time zone is not known; give the time with its offset (+08:00)"),
    "dispo.problem.callback_past": ("约定时间：须是尚未到来的时间", "callback_at: a time still to come"),
    "dispo.problem.callback_far": ("约定时间：须在 {days} 天之内", "callback_at: within {days} days"),
    "dispo.problem.refusal_on_debtor": ("第三方拒绝配合：所拨号码是债务人本人的；拒绝只停拨第三方的号码（债务人要求停拨请用禁呼名单）",
                                        "third_party_refused: the number called is the debtor's own; a refusal stops calls to "
                                        "a third party's number only (the debtor's: the do-not-call list)"),
    "dispo.problem.notes": ("备注：最多 {max} 个字符的文字", "notes: at most {max} characters of text"),
    "dispo.problem.notes_needed": ("备注：“{code}”须写明情况（至少 {min} 个字符）",
                                   "notes: say what was said ({min} characters at least) for {code}"),
    "dispo.problem.corrects": ("更正：应为本次通话的一条处理结果", "corrects: the id of a disposition of this call"),
    "dispo.problem.corrected_already": ("更正：#{id} 已被 #{by} 更正，请更正那一条",
                                        "corrects: #{id} was already corrected by #{by}; correct that one"),
    "followups.title": ("到期的承诺缴费", "Promises to pay due"),
    "followups.due": ("到期日", "Due on"),
    "followups.show": ("查看", "Show"),
    "followups.none": ("这一天没有到期的承诺", "No promises due that day"),
    "followups.unassigned": ("未分配", "unassigned"),
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
