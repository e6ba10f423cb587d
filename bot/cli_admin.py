"""`microwish admin create-user NAME` and `microwish export --format xlsx|csv [--out FILE]`."""

from __future__ import annotations

import argparse
import getpass
import sys
from contextlib import nullcontext
from typing import Any, Callable, ContextManager

from bot.config import ConfigError, Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    admin = sub.add_parser("admin", help="dashboard accounts").add_subparsers(dest="admin_command", required=True)
    p = admin.add_parser("create-user", help="a dashboard login (the password is asked, never a default)")
    p.add_argument("name")
    p.add_argument("--community", help="limit the account to one community (default: all)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_create_user)

    e = sub.add_parser("export", help="the ledger (台账) of all wishes")
    e.add_argument("--format", choices=("xlsx", "csv"), required=True)
    e.add_argument("--out", help="the file to write (CSV goes to stdout without it; XLSX needs it)")
    e.add_argument("--community", help="only this community's wishes")
    e.set_defaults(func=cmd_export)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("password again: "):
        raise ConfigError("the two passwords differ; nothing was created")
    return first


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from bot.auth import AccountError, create_admin_user
    from bot.clock import SystemClock
    from storage.db import Database
    from storage.migrate import upgrade

    password = _read_password(args)
    upgrade(settings.database_url)
    db = Database(settings.database_url, writers=1)
    try:
        user = db.run_sync(lambda uow: create_admin_user(uow, username=args.name, password=password,
                                                         community=args.community), SystemClock().now())
    except AccountError as exc:
        print(f"microwish: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    scope = f"community {args.community}" if args.community else "all communities"
    print(f"dashboard user {user.username} created ({scope})")
    return 0


def _progress(total: int, enabled: bool) -> tuple[ContextManager[Any], Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not enabled:
        return nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("export", total=total)
    return bar, lambda n: bar.advance(task, n)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.clock import SystemClock
    from bot.services import ledger
    from storage.db import Database

    if args.format == "xlsx" and not args.out:
        raise ConfigError("--format xlsx needs --out FILE (a spreadsheet is not written to a terminal)")
    now = SystemClock().now()
    db = Database(settings.database_url, writers=1)
    try:
        community_id = None
        if args.community:
            unit = db.run_sync(lambda uow: uow.org.by_name("community", args.community), now, write=False)
            if unit is None:
                raise ConfigError(f"no community named {args.community!r}")
            community_id = unit.id
        total = db.run_sync(lambda uow: ledger.count_wishes(uow, community_id=community_id), now, write=False)
        bar, progress = _progress(total, sys.stderr.isatty())
        batches = ledger.iter_batches(db, settings, now, community_id=community_id)
        with bar:
            if args.format == "xlsx":
                budget = db.run_sync(lambda uow: ledger.budget_rows(uow, settings, community_id=community_id), now, write=False)
                n = ledger.write_xlsx(batches, args.out, progress=progress, budget=budget)
            elif args.out:
                with open(args.out, "w", encoding="utf-8", newline="") as fh:
                    n = ledger.write_csv(batches, fh, progress=progress)
            else:
                sys.stdout.reconfigure(encoding="utf-8", newline="")  # type: ignore[union-attr]
                n = ledger.write_csv(batches, sys.stdout, progress=progress)
    finally:
        db.close()
    if args.out:
        print(f"{n} wishes written to {args.out}", file=sys.stderr)
    return 0
