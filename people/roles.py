"""The role matrix: who may do what, in one place.

Every endpoint and page of the console names one `Permission` (console/endpoints.py) and
the guard asks `may(role, permission)` here; nothing else in dunline checks a role by
name. `reach(role)` says *which* cases a role's case permissions cover (a collector's own,
a team lead's team's, everyone else's all); `sees_unmasked` says who reads debtor ID and
phone numbers in full. docs/roles.md is this table in prose (a test keeps them equal).

Pure: no I/O.
"""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    COLLECTOR = "collector"
    TEAM_LEAD = "team_lead"
    SUPERVISOR = "supervisor"
    QC = "qc"
    COMPLIANCE = "compliance"
    ADMIN = "admin"
    CLIENT = "client"  # the client's staff: read-only reports of their own batches


class Permission(StrEnum):
    SIGNED_IN = "signed_in"  # any signed-in user: their own session, the API description
    CASE_VIEW = "case.view"  # case list and a case's page (within the role's reach)
    CASE_VIEW_UNMASKED = "case.view_unmasked"  # debtor ID and phone numbers in full
    CASE_DIAL = "case.dial"  # place a call for a case
    CASE_EDIT = "case.edit"  # add a phone found by tracing
    CASE_CLOSE = "case.close"  # return or close a case, with a reason
    CASE_FLAG = "case.flag"  # raise dispute / fraud / care, mark a third party's refusal
    CASE_CLEAR = "case.clear"  # clear dispute or fraud, approve care, lift a refusal or a retired phone
    CASE_DISPOSE = "case.dispose"  # record what came of a call (its disposition), and correct it
    BATCH_IMPORT = "batch.import"  # import a client's batch, read its error report
    BATCH_VIEW = "batch.view"  # batches, their progress and summaries
    PAYMENT_IMPORT = "payment.import"  # import the client's payment records, read the imports and error reports
    ASSIGN = "assign"  # assign cases to teams and collectors, the workload view
    SUPPRESSION_MANAGE = "suppression.manage"  # do-not-call and other suppressions
    CALLER_ID_MANAGE = "caller_id.manage"  # the clients' approved caller-ID pools
    USER_MANAGE = "user.manage"  # users and teams
    RECORDING_ACCESS = "recording.access"  # search, read and play recordings (with a reason)
    RECORDING_EXPORT = "recording.export"  # export a case's recordings as evidence
    REPORT_VIEW = "report.view"  # reports (a client user: its own batches only)
    SYSTEM_VIEW = "system.view"  # the watchdog and the metrics
    FLOOR_WORK = "floor.work"  # take calls on the floor: a seat on one's own phone, pause, ready
    FLOOR_VIEW = "floor.view"  # the wallboard: collectors' states and live calls (a team lead: their team)
    FLOOR_MANAGE = "floor.manage"  # pause a collector
    CALL_MONITOR = "call.monitor"  # listen, whisper, barge on a live call from one's own phone
    CAMPAIGN_MANAGE = "campaign.manage"  # create campaigns; start, pause, stop them
    TEMPLATE_APPROVE = "template.approve"  # write, approve and retire letter / SMS / lawyer-letter templates
    CORRESPONDENCE = "correspondence.register"  # register a letter, SMS or lawyer letter sent, and its reply
    VISIT_REQUEST = "visit.request"  # ask for a field visit; as its team: its times, report, photos, recordings
    VISIT_APPROVE = "visit.approve"  # approve or refuse a field visit
    QC_SCORE = "qc.score"  # draw the week's QC sample, listen to its calls and score them
    QC_VIEW = "qc.view"  # QC scores and reports (a collector: their own; a team lead: their team's)
    COMPLAINT_MANAGE = "complaint.manage"  # complaints: see, register, outcome, follow-up call, close
    COMPLAINT_ALLOW_DIALING = "complaint.allow_dialing"  # let a case with an open complaint be dialled


class Reach(StrEnum):
    """Which cases a role's case permissions cover."""

    OWN = "own"  # cases assigned to the user
    TEAM = "team"  # cases assigned to the user's team
    ALL = "all"
    CLIENT = "client"  # the user's client's batches (reports only)
    NONE = "none"


R = Role
P = Permission
_ALL_ROLES = frozenset(Role)

MATRIX: dict[Permission, frozenset[Role]] = {
    P.SIGNED_IN: _ALL_ROLES,
    P.CASE_VIEW: frozenset({R.COLLECTOR, R.TEAM_LEAD, R.SUPERVISOR, R.QC, R.COMPLIANCE}),
    P.CASE_VIEW_UNMASKED: frozenset({R.SUPERVISOR, R.COMPLIANCE}),
    P.CASE_DIAL: frozenset({R.COLLECTOR, R.TEAM_LEAD, R.SUPERVISOR}),
    P.CASE_EDIT: frozenset({R.COLLECTOR, R.TEAM_LEAD, R.SUPERVISOR}),
    P.CASE_CLOSE: frozenset({R.TEAM_LEAD, R.SUPERVISOR}),
    P.CASE_FLAG: frozenset({R.COLLECTOR, R.TEAM_LEAD, R.SUPERVISOR, R.COMPLIANCE}),
    P.CASE_CLEAR: frozenset({R.SUPERVISOR}),
    P.CASE_DISPOSE: frozenset({R.COLLECTOR, R.TEAM_LEAD, R.SUPERVISOR}),
    P.BATCH_IMPORT: frozenset({R.SUPERVISOR}),
    P.BATCH_VIEW: frozenset({R.TEAM_LEAD, R.SUPERVISOR, R.ADMIN, R.CLIENT}),
    P.PAYMENT_IMPORT: frozenset({R.SUPERVISOR}),
    P.ASSIGN: frozenset({R.TEAM_LEAD, R.SUPERVISOR}),
    P.SUPPRESSION_MANAGE: frozenset({R.COMPLIANCE}),
    P.CALLER_ID_MANAGE: frozenset({R.ADMIN}),
    P.USER_MANAGE: frozenset({R.ADMIN}),
    P.RECORDING_ACCESS: frozenset({R.SUPERVISOR, R.QC, R.COMPLIANCE}),
    P.RECORDING_EXPORT: frozenset({R.COMPLIANCE}),
    P.REPORT_VIEW: frozenset({R.TEAM_LEAD, R.SUPERVISOR, R.COMPLIANCE, R.ADMIN, R.CLIENT}),
    P.SYSTEM_VIEW: frozenset({R.SUPERVISOR, R.COMPLIANCE, R.ADMIN}),
    P.FLOOR_WORK: frozenset({R.COLLECTOR, R.TEAM_LEAD}),
    P.FLOOR_VIEW: frozenset({R.TEAM_LEAD, R.SUPERVISOR}),
    P.FLOOR_MANAGE: frozenset({R.TEAM_LEAD, R.SUPERVISOR}),
    P.CALL_MONITOR: frozenset({R.TEAM_LEAD, R.SUPERVISOR}),
    P.CAMPAIGN_MANAGE: frozenset({R.SUPERVISOR}),
    P.TEMPLATE_APPROVE: frozenset({R.SUPERVISOR, R.COMPLIANCE}),
    P.CORRESPONDENCE: frozenset({R.COLLECTOR, R.TEAM_LEAD, R.SUPERVISOR}),
    P.VISIT_REQUEST: frozenset({R.COLLECTOR, R.TEAM_LEAD}),
    P.VISIT_APPROVE: frozenset({R.SUPERVISOR}),
    P.QC_SCORE: frozenset({R.QC}),
    P.QC_VIEW: frozenset({R.COLLECTOR, R.TEAM_LEAD, R.SUPERVISOR, R.QC}),
    P.COMPLAINT_MANAGE: frozenset({R.TEAM_LEAD, R.SUPERVISOR, R.COMPLIANCE}),
    P.COMPLAINT_ALLOW_DIALING: frozenset({R.SUPERVISOR}),
}

_REACH: dict[Role, Reach] = {
    R.COLLECTOR: Reach.OWN, R.TEAM_LEAD: Reach.TEAM, R.SUPERVISOR: Reach.ALL, R.QC: Reach.ALL,
    R.COMPLIANCE: Reach.ALL, R.ADMIN: Reach.NONE, R.CLIENT: Reach.CLIENT,
}

# what each role is for (docs/roles.md, the users page)
DESCRIPTIONS: dict[Role, str] = {
    R.COLLECTOR: "works their own cases: calls and their dispositions, flags, phones found by tracing",
    R.TEAM_LEAD: "their team's cases and collectors: assignment, returns and closes, batch progress",
    R.SUPERVISOR: "the whole floor: every case, imports, assignment, clearing flags, recordings",
    R.QC: "quality control: reads cases (masked) and listens to recordings",
    R.COMPLIANCE: "evidence and suppressions: recordings and exports, do-not-call, every case in full",
    R.ADMIN: "the system: users and teams, caller-ID pools, batch progress, the watchdog; no debtor data",
    R.CLIENT: "the client's staff: reports of their own batches, nothing else",
}


def may(role: str, permission: Permission) -> bool:
    """May a holder of `role` use `permission`? An unknown role may do nothing."""
    try:
        return Role(role) in MATRIX[permission]
    except ValueError:
        return False


def reach(role: str) -> Reach:
    try:
        return _REACH[Role(role)]
    except ValueError:
        return Reach.NONE


def sees_unmasked(role: str) -> bool:
    return may(role, Permission.CASE_VIEW_UNMASKED)


def matrix_rows() -> list[tuple[str, list[bool]]]:
    """The matrix as rows of (permission, allowed per role in Role order): docs and tests."""
    return [(p.value, [r in MATRIX[p] for r in Role]) for p in Permission]


def matrix_markdown() -> str:
    """The matrix as the Markdown table docs/roles.md carries (a test keeps them equal)."""
    lines = ["| permission | " + " | ".join(r.value for r in Role) + " |",
             "|---|" + "---|" * len(Role)]
    lines += [f"| `{name}` | " + " | ".join("yes" if ok else "" for ok in allowed) + " |"
              for name, allowed in matrix_rows()]
    lines += ["", "| role | reaches | for |", "|---|---|---|"]
    lines += [f"| {r.value} | {reach(r).value} | {DESCRIPTIONS[r]} |" for r in Role]
    return "\n".join(lines) + "\n"
