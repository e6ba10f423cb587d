"""`microwish members invite|import`: invite codes and the Party-member roster.

An import is all or nothing: every row is checked first, a report names every bad row, and
only a clean file is written, in one transaction, with a personal invite code per member.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, Iterable

from bot import messages
from bot.clock import SystemClock
from bot.config import Settings
from bot.messages import Keyword
from bot.privacy import normalize_phone
from bot.services.members import (NAME_MAX, MemberRow, import_members, issue_invites, phones_of_members,
                                  split_tags)

COLUMNS = messages.IMPORT_COLUMNS
REQUIRED = ("name", "branch")
MAX_INVITES = 1000


class RosterError(ValueError):
    """The file cannot be read as a roster at all (wrong type, no header)."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    members = sub.add_parser("members", help="Party members: invite codes and imports")
    cmds = members.add_subparsers(dest="members_command", required=True)
    invite = cmds.add_parser("invite", help="print new single-use invite codes, one per line")
    invite.add_argument("--branch", required=True, help="the Party branch the codes bind to (made if new)")
    invite.add_argument("--count", type=int, default=1, help="how many codes (default 1)")
    invite.set_defaults(func=cmd_invite)
    imp = cmds.add_parser("import", help=f"import members from CSV or XLSX ({messages.IMPORT_HEADER_HINT})")
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=cmd_import)


def _database(settings: Settings) -> Any:
    from storage.db import Database
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    return Database(settings.database_url, writers=1)


def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    branch = " ".join(args.branch.split())
    if not branch or len(branch) > 64:
        print("microwish: --branch needs a name of 1–64 characters", file=sys.stderr)
        return 2
    if not 1 <= args.count <= MAX_INVITES:
        print(f"microwish: --count must be between 1 and {MAX_INVITES}", file=sys.stderr)
        return 2
    db = _database(settings)
    try:
        codes = db.run_sync(lambda uow: issue_invites(uow, branch=branch, count=args.count, settings=settings),
                            SystemClock().now())
    finally:
        db.close()
    for code in codes:
        print(code)
    print(f"{len(codes)} invite code(s) for {branch}, valid {settings.invite_valid_days} days", file=sys.stderr)
    return 0


def read_table(path: Path) -> list[list[str]]:
    """All rows of a CSV (UTF-8, with or without BOM, or GB18030) or the first sheet of an XLSX, as text."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030")  # Excel on Chinese Windows saves CSV this way
        return [row for row in csv.reader(text.splitlines())]
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            return [["" if v is None else _cell(v) for v in row] for row in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
    raise RosterError(f"{path.name}: only .csv and .xlsx files can be imported")


def _cell(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a phone typed into Excel comes back as 13800138000.0
    return str(v)


def parse_rows(table: list[list[str]]) -> tuple[list[MemberRow], list[str]]:
    """Validated rows, and one line per bad row (line numbers as in the file, the header is line 1)."""
    if not table:
        raise RosterError("the file is empty")
    header = [COLUMNS.get(h.strip().lstrip("\ufeff").lower(), COLUMNS.get(h.strip(), "")) for h in table[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise RosterError(f"line 1: the header needs columns {', '.join(missing)} "
                           f"({messages.IMPORT_HEADER_HINT})")
    rows, errors = [], []
    phones: dict[str, int] = {}
    for lineno, raw in enumerate(table[1:], start=2):
        values = {field: (raw[i].strip() if i < len(raw) and raw[i] else "") for i, field in enumerate(header) if field}
        if not any(values.values()):
            continue  # blank line
        problems = []
        name, branch = " ".join(values.get("name", "").split()), " ".join(values.get("branch", "").split())
        if not name:
            problems.append("name is empty")
        elif len(name) > NAME_MAX:
            problems.append(f"name longer than {NAME_MAX} characters")
        if not branch:
            problems.append("branch is empty")
        elif len(branch) > 64:
            problems.append("branch longer than 64 characters")
        phone = None
        if values.get("phone"):
            phone = normalize_phone(values["phone"])
            if phone is None:
                problems.append(f"phone {values['phone']!r} is not a phone number")
            elif phone in phones:
                problems.append(f"phone repeats line {phones[phone]}")
            else:
                phones[phone] = lineno
        for col in ("community", "grid"):
            if len(values.get(col, "")) > 64:
                problems.append(f"{col} longer than 64 characters")
        if problems:
            errors.append(f"line {lineno}: {'; '.join(problems)}")
            continue
        rows.append(MemberRow(name=name, branch=branch, phone=phone, community=values.get("community") or None,
                              grid=values.get("grid") or None, skills=split_tags(values.get("skills", "")), line=lineno))
    return rows, errors


def _progress(rows: list[MemberRow]) -> Iterable[MemberRow]:
    """The rows, with a rich progress bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return rows
    from rich.console import Console
    from rich.progress import track

    return track(rows, description="importing", transient=True, console=Console(stderr=True))


def _report(path: Path, errors: list[str]) -> int:
    print(f"{path.name}: {len(errors)} bad row(s); nothing was imported:", file=sys.stderr)
    for line in errors:
        print(f"  {line}", file=sys.stderr)
    return 1


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"microwish: no such file: {path}", file=sys.stderr)
        return 2
    try:
        rows, errors = parse_rows(read_table(path))
    except (RosterError, OSError, ValueError) as exc:
        print(f"microwish: {exc}", file=sys.stderr)
        return 1
    if errors:
        return _report(path, errors)
    if not rows:
        print(f"{path.name}: no members in the file; nothing was imported", file=sys.stderr)
        return 1

    def job(uow: Any) -> tuple[list[str], list[tuple[MemberRow, str]]]:
        taken = phones_of_members(uow, [r.phone for r in rows if r.phone])
        if taken:  # checked in the import's own transaction, so nothing is half-imported
            return [f"line {r.line}: phone {r.phone} already belongs to a bound member" for r in rows if r.phone in taken], []
        return [], [pair for row in _progress(rows) for pair in import_members(uow, rows=[row], settings=settings)]

    db = _database(settings)
    try:
        errors, made = db.run_sync(job, SystemClock().now())
    finally:
        db.close()
    if errors:
        return _report(path, errors)
    for row, code in made:
        print(f"{code}\t{row.name}\t{row.branch}")
    print(f"imported {len(made)} member(s); each binds with {Keyword.BIND.value} <code> within {settings.invite_valid_days} days",
          file=sys.stderr)
    return 0
