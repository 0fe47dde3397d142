"""The `dunline` command: pbx, db, serve, dial, demo, simulate, ..."""
from __future__ import annotations

import argparse
import asyncio
import os
import json
import logging
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

from dunline.settings import SettingsError, load_settings
from storage.files import UMASK


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def cmd_pbx(args: argparse.Namespace) -> int:
    from asterisk_conf import sandbox

    state = Path(args.state_dir or load_settings(args.config).sandbox_dir)
    if args.action in ("image", "up"):
        problem = sandbox.check_host()
        if problem:
            print(problem, file=sys.stderr)
            return 2
    if args.action == "image":
        print(sandbox.ensure_image())
    elif args.action == "up":
        info = sandbox.up(state, phones=args.phones)
        print(sandbox.status(state))
        print(f"state: {info.state_dir}")
    elif args.action == "down":
        sandbox.down(state)
        print("sandbox stopped")
    else:
        status = sandbox.status(state)
        print(status)
        return 0 if getattr(status, "running", True) else 1
    return 0


def cmd_pbx_render(args: argparse.Namespace) -> int:
    """Render the PBX configuration (the sandbox's templates) for a real deployment."""
    from asterisk_conf.render import PhoneAccount, pbx_values, render_set

    settings = load_settings(args.config)
    secret = settings.ami.secret
    phone_secret = os.environ.get("DUNLINE_PHONE_SECRET", "")
    if not secret or not phone_secret:
        print("pbx render needs DUNLINE_AMI_SECRET and DUNLINE_PHONE_SECRET in the environment",
              file=sys.stderr)
        return 2
    values = pbx_values(
        ami_port=settings.ami.port, ami_secret=secret, pbx_sip_port=args.sip_port,
        carrier_sip_port=args.carrier_port, carrier_host=args.carrier_host,
        agi_port=settings.agi.port, agi_host=settings.agi.host, sip_bind=args.sip_bind,
        phones=tuple(PhoneAccount(e, phone_secret) for e in settings.pbx.collectors),
        rtp_start=10000, rtp_end=20000, etc_dir=str(args.out),
        recording_dir=settings.recording.dir_pbx,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_set("pbx", values).items():
        target = out / name
        target.write_text(text)
        target.chmod(0o640)  # secrets (AMI, phones) and the dialplan's contract: the PBX's group only
        if args.group is not None:
            os.chown(target, -1, _group_id(args.group))
    print(f"rendered the PBX configuration into {out}")
    return 0


def _group_id(group: str) -> int:
    """A group by number or name (the rendered configs are readable by that group)."""
    if group.isdigit():
        return int(group)
    import grp

    return grp.getgrnam(group).gr_gid


def cmd_db(args: argparse.Namespace) -> int:
    from storage.db import Database

    async def run() -> None:
        db = Database(load_settings(args.config).database.url)
        await db.migrate()
        await db.close()

    asyncio.run(run())
    print("database at the newest revision")
    return 0


async def serve_until_signal(settings, clock=None) -> None:
    """Run the service until SIGINT/SIGTERM, then let calls in progress finish."""
    from dunline.service import Service

    service = Service(settings) if clock is None else Service(settings, clock=clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        logging.getLogger("dunline").info("stopping: letting calls in progress finish")
        await service.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    from dunline.wiring import settings_with_sandbox

    asyncio.run(serve_until_signal(settings_with_sandbox(args.config, args.state_dir)))
    return 0


def cmd_dial(args: argparse.Namespace) -> int:
    import time
    from urllib.parse import quote

    settings = load_settings(args.config)
    if not os.environ.get(TOKEN_ENV):
        print(f"dial needs an API token in ${TOKEN_ENV} (make one: dunline user token NAME --label cli)",
              file=sys.stderr)
        return 2
    path = f"/api/cases/{quote(args.case_id, safe='')}/dial"
    if args.number:
        path += f"?number={quote(args.number)}"
    attempt, status = _call_service(settings, path, "dial refused", method="POST", refused_status=1)
    if attempt is None:
        return status
    print(f"attempt {attempt['id']}: {attempt['state']}")
    deadline = time.monotonic() + args.wait
    while attempt["state"] != "ended" and time.monotonic() < deadline:
        time.sleep(0.5)
        attempt, status = _call_service(settings, f"/api/attempts/{attempt['id']}", "attempt")
        if attempt is None:
            return status
    print(json.dumps(attempt, indent=2))
    return 0 if attempt["state"] == "ended" else 1


TOKEN_ENV = "DUNLINE_API_TOKEN"


def _call_service(settings, path: str, what: str, *, method: str = "GET",
                  refused_status: int = 2, accept: tuple[int, ...] = ()) -> tuple[dict | None, int]:
    """JSON from the running service's console (as the API token in $DUNLINE_API_TOKEN, if
    set), or (None, exit status) with the error said. Statuses in `accept` are answers too."""
    base = f"http://{settings.console.host}:{settings.console.port}"
    headers = {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"} if os.environ.get(TOKEN_ENV) else {}
    try:
        request = urllib.request.Request(f"{base}{path}", method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.load(resp), 0
    except urllib.error.HTTPError as exc:
        if exc.code in accept:
            return json.load(exc), 0
        print(f"{what}: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return None, refused_status
    except OSError as exc:
        print(f"cannot reach the dunline service at {base} ({exc}); start it with `dunline serve`",
              file=sys.stderr)
        return None, 2


def cmd_watchdog(args: argparse.Namespace) -> int:
    """The running service's watchdog: gate, checks, last canary (from /healthz, which needs
    no sign-in: a container's health check runs this). Exit 0 open, 1 closed."""
    health, code = _call_service(load_settings(args.config), "/healthz", "watchdog", accept=(503,))
    if health is None:
        return code
    if "watchdog" not in health:
        print("the watchdog is not running (watchdog.enabled = false)", file=sys.stderr)
        return 2
    status = {"ready": health["ready"], "reasons": health.get("reasons", []), **health["watchdog"]}
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(f"dialing gate: {status['gate'].upper()}"
              + (f" ({status['gate_reason']})" if status["gate_reason"] else ""))
        held = status.get("dials_held_back")
        if held:
            print(f"dials held back ({held['rule']}, the gate stays open; retry after {held['retry_after_s']} s): "
                  f"{held['reason']}")
        for name, check in status["checks"].items():
            print(f"  {check['state'].upper():<8} {name:<18} {check['reason']}")
        canary = status.get("canary")
        if canary:
            print(f"  last canary: {'passed' if canary['passed'] else 'FAILED'} in {canary['seconds']} s"
                  f" ({canary['reason']}), {canary['runs']} run(s)")
    return 0 if status["gate_open"] else 1


def _parse_when(text: str) -> "datetime":
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"not a date/time: {text!r} (use ISO 8601, e.g. 2026-11-29)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def cmd_compliance(args: argparse.Namespace) -> int:
    from dialer.compliance import compliance_report
    from dialer.policy import profile
    from dialer.policy_config import build_policy_book
    from storage.db import Database

    settings = load_settings(args.config)
    start, end = _parse_when(args.start), _parse_when(args.end)

    async def run():
        db = Database(settings.database.url)
        try:
            await db.migrate()
            rules = profile(args.profile) if args.profile else build_policy_book(settings)
            return await compliance_report(db, start, end, rules, clock_tolerance_s=args.clock_tolerance)
        finally:
            await db.close()

    report = asyncio.run(run())
    print(report.render())
    return 0 if report.clean else 1


def cmd_case(args: argparse.Namespace) -> int:
    from storage import repositories as repo

    settings = load_settings(args.config)
    if args.action in ("flag", "unflag"):
        return _flag_case(args, settings)

    async def show(s, case) -> int:
        print(f"case {case.id} ({case.client}{', campaign ' + case.campaign if case.campaign else ''}) "
              f"{case.debtor_name}: {case.status} "
              f"flags={case.flags or []} zone={case.timezone or case.region or '?'}")
        for p in case.phones:
            print(f"  phone {p.number} {p.kind}{' DNC' if p.do_not_call else ''}"
                  f"{' refused' if p.refused else ''}")
        for a in await repo.attempts_for_case(s, case.id):
            print(f"  attempt {a.id} {a.created_at:%Y-%m-%d %H:%M:%S}Z {a.number} "
                  f"{a.outcome or a.state} cause={a.hangup_cause}")
        for d in await repo.decisions_for_case(s, case.id):
            verdict = "allowed" if d.allowed else (
                f"BLOCKED {d.rule}: {d.reason}; next allowed "
                f"{d.next_allowed_at.isoformat() if d.next_allowed_at else 'when lifted by a person'}")
            print(f"  decision {d.at:%Y-%m-%d %H:%M:%S}Z {d.number} {verdict}")
        return 0

    return _run_on_case(settings, args.case_id, show)


def _flag_case(args: argparse.Namespace, settings) -> int:
    """Set or clear a policy flag (dispute, fraud, care) on a case, with who and why."""
    from dialer.policy.model import CASE_FLAGS
    from storage import repositories as repo
    from storage.clock import system_clock

    if args.flag not in CASE_FLAGS:
        print(f"unknown flag {args.flag!r} (one of: {', '.join(sorted(CASE_FLAGS))})", file=sys.stderr)
        return 2
    if not args.by or not args.why:
        print("--by and --why are required: every change of a flag is audited", file=sys.stderr)
        return 2

    async def flag(s, case) -> int:
        flags = set(case.flags or ())
        flags.add(args.flag) if args.action == "flag" else flags.discard(args.flag)
        case.flags = sorted(flags)
        await repo.audit(s, at=system_clock(), actor=args.by, action=f"case.{args.action}ged",
                         subject=case.id, flag=args.flag, why=args.why)
        print(f"case {args.case_id}: flags now {sorted(flags)}")
        return 0

    return _run_on_case(settings, args.case_id, flag)


def _run_on_case(settings, case_id: str, work) -> int:
    """Open the database, load the case and run `work(session, case)` in one transaction."""
    from storage import repositories as repo
    from storage.db import Database

    async def run() -> int:
        db = Database(settings.database.url)
        try:
            await db.migrate()
            async with db.session() as s:
                try:
                    case = await repo.get_case(s, case_id)
                except repo.NotFound as exc:
                    print(exc, file=sys.stderr)
                    return 1
                return await work(s, case)
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_demo(args: argparse.Namespace) -> int:
    from dunline.demo import run_demo

    return asyncio.run(run_demo(args.config, Path(args.state_dir) if args.state_dir else None,
                                keep_running=not args.exit))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dunline", description=__doc__)
    parser.add_argument("--config", help="TOML settings file (default: $DUNLINE_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    pbx = sub.add_parser("pbx", help="the sandbox PBX, carrier and collector phones")
    pbx.add_argument("action", choices=("image", "up", "down", "status"))
    pbx.add_argument("--state-dir", help="sandbox state directory (default: settings sandbox_dir)")
    pbx.add_argument("--phones", type=int, default=2)
    pbx.set_defaults(func=cmd_pbx)

    render = sub.add_parser("pbx-render", help="render the PBX configuration for a deployment")
    render.add_argument("--out", required=True, help="directory to write the .conf files into")
    render.add_argument("--sip-bind", default="127.0.0.1")
    render.add_argument("--sip-port", type=int, default=5060)
    render.add_argument("--carrier-host", default="127.0.0.1", help="the SIP trunk's host")
    render.add_argument("--carrier-port", type=int, default=5060)
    render.add_argument("--group", help="the group the PBX reads its configuration as (files are 0640)")
    render.set_defaults(func=cmd_pbx_render)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=("upgrade",))
    db.set_defaults(func=cmd_db)

    serve = sub.add_parser("serve", help="run the service (AMI, FastAGI, recorder, console)")
    serve.add_argument("--state-dir", help="use the sandbox PBX in this state directory")
    serve.set_defaults(func=cmd_serve)

    dial = sub.add_parser("dial", help="place one call for a case through the running service")
    dial.add_argument("case_id")
    dial.add_argument("--number", help="which of the case's numbers (default: the first)")
    dial.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the outcome")
    dial.set_defaults(func=cmd_dial)

    comp = sub.add_parser("compliance", help="independent audit of stored attempts")
    comp.add_argument("action", choices=("report",))
    comp.add_argument("--from", dest="start", required=True, help="start (ISO 8601, UTC if no zone)")
    comp.add_argument("--to", dest="end", required=True, help="end, exclusive")
    comp.add_argument("--profile", help="rules to audit against (default: policy.profile)")
    comp.add_argument("--clock-tolerance", type=float, default=60.0,
                      help="seconds the dialer's decision time may differ from the PBX's time of the call (60)")
    comp.set_defaults(func=cmd_compliance)

    case = sub.add_parser("case", help="a case: phones, attempts and every policy decision")
    case.add_argument("action", choices=("show", "flag", "unflag"))
    case.add_argument("case_id")
    case.add_argument("flag", nargs="?", help="with flag/unflag: dispute, fraud or care")
    case.add_argument("--by", help="who (flag/unflag)")
    case.add_argument("--why", help="why (flag/unflag)")
    case.set_defaults(func=cmd_case)

    watchdog = sub.add_parser("watchdog", help="the recording-chain watchdog of the running service")
    watchdog.add_argument("action", choices=("status",))
    watchdog.add_argument("--json", action="store_true")
    watchdog.set_defaults(func=cmd_watchdog)

    from dunline.cli_batches import add_batch_parser
    from dunline.cli_payments import add_payment_parser
    from dunline.cli_qc import add_qc_parser
    from dunline.cli_recordings import add_recordings_parser
    from dunline.cli_reports import add_report_parser
    from dunline.cli_simulate import add_simulate_parser
    from dunline.cli_users import add_user_parsers
    from dunline.cli_visits import add_visits_parser

    add_recordings_parser(sub)
    add_user_parsers(sub)
    add_batch_parser(sub)
    add_payment_parser(sub)
    add_simulate_parser(sub)
    add_visits_parser(sub)
    add_qc_parser(sub)
    add_report_parser(sub)

    demo = sub.add_parser("demo", help="sandbox PBX + service + demo calls, then a summary")
    demo.add_argument("--state-dir")
    demo.add_argument("--exit", action="store_true", help="stop after the summary")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.umask(UMASK)  # files at rest: whatever dunline writes is for its owner and group only
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"settings error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
