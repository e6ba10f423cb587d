"""`microwish budget set --community NAME --year YYYY --amount YUAN` and `microwish budget show [--year YYYY]`."""

from __future__ import annotations

import argparse
import sys

from bot.config import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    budget = sub.add_parser("budget", help="yearly budgets for material wishes").add_subparsers(
        dest="budget_command", required=True)
    p = budget.add_parser("set", help="set a community's budget for a year")
    p.add_argument("--community", required=True, help="the community's name")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--amount", required=True, help="yuan, e.g. 500000")
    p.add_argument("--create", action="store_true", help="create the community if it is not known yet")
    p.set_defaults(func=cmd_set)
    s = budget.add_parser("show", help="budget, spent, committed and remaining per community")
    s.add_argument("--year", type=int, help="default: this year (local time)")
    s.set_defaults(func=cmd_show)


def _open(settings: Settings):  # type: ignore[no-untyped-def]
    from storage.db import Database
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    return Database(settings.database_url, writers=1)


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    from bot.clock import SystemClock
    from bot.services import budgets
    from storage.db import UnitOfWork

    amount = budgets.parse_amount(args.amount)
    if amount is None or not 2000 <= args.year <= 2100:
        print("microwish: --amount must be yuan (e.g. 500000 or 1234.5) and --year between 2000 and 2100", file=sys.stderr)
        return 2

    def job(uow: UnitOfWork) -> str | None:
        unit = uow.org.by_name("community", args.community.strip())
        if unit is None and args.create:
            unit = uow.org.ensure("community", args.community.strip())
        if unit is None:
            known = ", ".join(u.name for u in uow.org.all_of_kind("community")) or "none yet"
            print(f"microwish: no community named {args.community!r} (known: {known}; --create adds it)", file=sys.stderr)
            return None
        budgets.set_budget(uow, community_id=unit.id or 0, year=args.year, amount=amount)
        return budgets.figures(uow, unit.id, args.year, settings).summary()

    db = _open(settings)
    try:
        summary = db.run_sync(job, SystemClock().now())
    finally:
        db.close()
    if summary is None:
        return 1
    print(f"{args.community} {args.year}: {summary}")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from bot.clock import SystemClock
    from bot.services import budgets

    now = SystemClock().now()
    year = args.year or budgets.year_of(now, settings)
    db = _open(settings)
    try:
        rows = db.run_sync(lambda uow: budgets.all_figures(uow, year, settings), now, write=False)
    finally:
        db.close()
    for f in rows:
        print(f"{f.community} {year}: {f.summary()}")
    return 0
