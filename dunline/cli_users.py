"""`dunline user ...` and `dunline team ...`: accounts from the command line (the host's
operator; the audit names them `cli:<login>`).

    dunline team add NAME | list
    dunline user add NAME --role ROLE [--name "Shown Name"] [--team T] [--client C] [--locale en] [--phone EXT]
    dunline user passwd NAME            dunline user disable|enable NAME --why WHY
    dunline user list                   dunline user set NAME [--role R] [--team T|--no-team] [--locale L]
    dunline user set NAME --phone EXT|--no-phone   (the SIP endpoint they work from on the floor)
    dunline user token NAME --label L [--days N]   (printed once)
    dunline user tokens [NAME]          dunline user revoke TOKEN_ID

Passwords are asked twice on the terminal, or read from standard input with
`--password-stdin` (one line; for scripts). Exit 0 done, 1 refused (the message says why).
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from dunline.settings import load_settings
from people.accounts import AccountError, Accounts
from people.roles import Role


def operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container without a passwd entry)
        return "cli:?"


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def run_accounts(args: argparse.Namespace, work: Callable[[Accounts], Awaitable[int]]) -> int:
    from storage.clock import system_clock
    from storage.db import Database

    async def run() -> int:
        db = Database(load_settings(args.config).database.url)
        try:
            await db.migrate()
            return await work(Accounts(db, system_clock))
        except AccountError as exc:
            print(exc, file=sys.stderr)
            return 1
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_team(args: argparse.Namespace) -> int:
    async def work(accounts: Accounts) -> int:
        if args.action == "add":
            if not args.team:
                raise AccountError("team add needs a name")
            team = await accounts.add_team(args.team, by=operator())
            print(f"team {team.name} added (id {team.id})")
        else:
            for team in await accounts.teams():
                print(f"{team.id:>4}  {team.name}")
        return 0

    return run_accounts(args, work)


def cmd_user(args: argparse.Namespace) -> int:
    needs_name = args.action not in ("list", "tokens", "revoke")
    if needs_name and not args.username:
        print(f"user {args.action} needs a user name", file=sys.stderr)
        return 2

    async def work(accounts: Accounts) -> int:
        by = operator()
        match args.action:
            case "add":
                if not args.role:
                    raise AccountError(f"--role is needed: one of {', '.join(r.value for r in Role)}")
                password = read_password(args)
                user = await accounts.add_user(username=args.username, display_name=args.name or args.username,
                                               role=args.role, password=password, by=by, team=args.team,
                                               client=args.client, locale=args.locale or "zh-CN",
                                               phone=args.phone)
                print(f"user {user.username} added: {user.role}")
            case "passwd":
                await accounts.set_password(args.username, read_password(args), by=by)
                print(f"password of {args.username} set; their sessions ended")
            case "disable" | "enable":
                await accounts.set_disabled(args.username, args.action == "disable", by=by, why=args.why or "")
                print(f"user {args.username} {args.action}d")
            case "set" if args.phone or args.no_phone:
                await accounts.set_phone(args.username, None if args.no_phone else args.phone, by=by)
                print(f"user {args.username}: phone {args.phone or '-'}")
            case "set":
                user = await accounts.update_user(args.username, by=by, role=args.role, team=args.team,
                                                  clear_team=args.no_team, locale=args.locale,
                                                  display_name=args.name)
                print(f"user {user.username}: {user.role}, team {user.team_id or '-'}, {user.locale}")
            case "list":
                _print_users(await accounts.users(), {t.id: t.name for t in await accounts.teams()})
            case "token":
                token = await accounts.issue_token(args.username, args.label or "script", by=by, days=args.days)
                print(token)
                print("(shown once: keep it; scripts send it as 'Authorization: Bearer <token>')", file=sys.stderr)
            case "tokens":
                for row, owner in await accounts.tokens(args.username):
                    state = "revoked" if row.revoked_at else (
                        f"expires {row.expires_at:%Y-%m-%d}" if row.expires_at else "no expiry")
                    used = f"{row.last_used_at:%Y-%m-%d %H:%M}Z" if row.last_used_at else "never"
                    print(f"{row.id:>4}  {owner:<16} {row.name:<20} {row.prefix}…  {state:<18} last used {used}")
            case "revoke":
                if not args.username or not args.username.isdigit():
                    raise AccountError("user revoke needs the token's id (dunline user tokens)")
                await accounts.revoke_token(int(args.username), by=by)
                print(f"token {args.username} revoked")
        return 0

    return run_accounts(args, work)


def _print_users(users: Any, teams: dict[int, str]) -> None:
    print(f"{'user':<16} {'role':<11} {'team':<14} {'client':<14} {'lang':<6} {'phone':<8} state")
    for u in users:
        state = f"disabled {u.disabled_at:%Y-%m-%d}" if u.disabled_at else "active"
        print(f"{u.username:<16} {u.role:<11} {teams.get(u.team_id, '-') if u.team_id else '-':<14} "
              f"{u.client or '-':<14} {u.locale:<6} {u.phone or '-':<8} {state}")


def add_user_parsers(sub: Any) -> None:
    team = sub.add_parser("team", help="teams of collectors")
    team.add_argument("action", choices=("add", "list"))
    team.add_argument("team", nargs="?")
    team.set_defaults(func=cmd_team)

    user = sub.add_parser("user", help="users: add, passwd, disable, enable, set, list, API tokens")
    user.add_argument("action", choices=("add", "passwd", "disable", "enable", "set", "list", "token", "tokens",
                                         "revoke"))
    user.add_argument("username", nargs="?", help="the user name (revoke: the token id)")
    user.add_argument("--role", help=f"one of {', '.join(r.value for r in Role)}")
    user.add_argument("--name", help="the name shown (default: the user name)")
    user.add_argument("--team")
    user.add_argument("--no-team", action="store_true", help="set: take the user out of their team")
    user.add_argument("--client", help="a client user's client")
    user.add_argument("--locale", choices=("zh-CN", "en"))
    user.add_argument("--phone", help="add/set: the SIP endpoint they work from (e.g. 6001)")
    user.add_argument("--no-phone", action="store_true", help="set: no phone")
    user.add_argument("--why", help="disable/enable: the reason (audited)")
    user.add_argument("--label", help="token: what the token is for")
    user.add_argument("--days", type=int, help="token: expires after this many days")
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.set_defaults(func=cmd_user)
