"""`microwish tick` and `microwish digest`: the scheduled sweeps and the digests, by hand."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from bot import logs
from bot.cli import parse_at
from bot.config import Settings
from storage.db import Database


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("tick", help="run every scheduled sweep that is due, then deliver the outbox")
    p.add_argument("--at", help="ISO 8601 time to act as if the clock read (no offset = local time)")
    p.set_defaults(func=cmd_tick)

    p = sub.add_parser("digest", help="build a digest for the admins; print it, or --send it")
    p.add_argument("--period", choices=("week", "tenday", "month"), required=True)
    p.add_argument("--at", help="ISO 8601 time; the digest covers the last complete period before it")
    p.add_argument("--send", action="store_true", help="queue it for the admins and deliver it")
    p.set_defaults(func=cmd_digest)


def _deliver(database: Database, settings: Settings, now: datetime) -> str:
    from bot.outbox import deliver_due

    sent = asyncio.run(deliver_due(database, settings, now))
    return f"outbox: {sent} delivered"


def cmd_tick(args: argparse.Namespace, settings: Settings) -> int:
    """Run each sweep as of `--at`, print one line per sweep, then deliver what is due."""
    from bot.services.sweeps import run_due_sweeps

    now = parse_at(args.at, settings)
    logs.configure(settings.log_format)  # logs to stderr: stdout is the report
    database = Database(settings.database_url, writers=1)
    try:
        outcomes = run_due_sweeps(database, settings, now)
        for outcome in outcomes:
            print(outcome.line(), flush=True)
        print(_deliver(database, settings, now), flush=True)
    finally:
        database.close()
    return 1 if any(o.error for o in outcomes) else 0


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    """Print the digest for the last complete period before `--at`; `--send` queues and delivers it."""
    from bot.services import digest

    now = parse_at(args.at, settings)
    logs.configure(settings.log_format)
    period = digest.last_complete_period(args.period, now, settings)
    database = Database(settings.database_url, writers=1)
    try:
        def job(uow):  # type: ignore[no-untyped-def]
            d = digest.build_digest(uow, settings, period)
            return digest.render_digest(d, settings), (digest.queue_digest(uow, settings, d) if args.send else 0)

        text, queued = database.run_sync(job, now, write=args.send)
        print(text, flush=True)
        if args.send:
            print(f"digest: {queued} messages queued", flush=True)
            print(_deliver(database, settings, now), flush=True)
    finally:
        database.close()
    return 0
