"""The ledger: `microwish export` as a real process, and the dashboard's download; masked, streamed."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock
from bot.config import Settings
from storage.db import Database
from tests.admin_support import ALICE, ALICE_PW, PHONE, RESIDENT_PHONE, ROOT, ROOT_PW, add_wish, login, seed_basics

ROOT_DIR = Path(__file__).resolve().parents[2]
RESIDENT, PLACE, CONTENT, STATUS, CLAIMER, BRANCH, RATING = 2, 3, 6, 7, 8, 9, 12  # columns of LEDGER_HEADERS


def microwish(db_url: str, tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "MICROWISH_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT_DIR)}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True,
                          input=stdin.encode() if stdin is not None else None, timeout=60)


def seed_ledger(database: Database, clock: FrozenClock) -> Any:
    def job(uow: Any) -> Any:
        seed = seed_basics(uow)
        for _ in range(5):
            add_wish(uow, seed, community=seed.community_a, status="claimed", claim_branch=seed.branch_a,
                     due_at=uow.now, rating=None)
        add_wish(uow, seed, community=seed.community_a, status="closed", rating=5, feedback="solved",
                 fulfilled_at=uow.now, closed_at=uow.now)
        return seed

    return database.run_sync(job, clock.now())


def assert_no_phone(text: str) -> None:
    assert PHONE not in text and RESIDENT_PHONE not in text
    assert PHONE[:7] not in text and RESIDENT_PHONE[:7] not in text


def test_export_xlsx_is_a_real_spreadsheet_with_masked_rows(db_url: str, database: Database, clock: FrozenClock,
                                                            tmp_path: Path) -> None:
    seed_ledger(database, clock)
    out = tmp_path / "ledger.xlsx"
    done = microwish(db_url, tmp_path, "export", "--format", "xlsx", "--out", str(out))
    assert done.returncode == 0, done.stderr.decode()
    wb = load_workbook(out)
    ws = wb.active
    rows = [[c if c is not None else "" for c in r] for r in ws.iter_rows(values_only=True)]
    assert tuple(rows[0]) == messages.LEDGER_HEADERS
    assert ws.freeze_panes == "A2"
    assert ws["A1"].font.bold
    assert ws.column_dimensions["G"].width > 20
    body = rows[1:]
    assert [r[0] for r in body] == list(range(1, 9))
    claimed = [r for r in body if r[STATUS] == messages.STATUS_NAMES["claimed"]]
    assert len(claimed) == 5 and all(r[CLAIMER] == "Li Ming" and r[BRANCH] == "Dongfeng Branch One" for r in claimed)
    assert all(r[PLACE] in ("Dongfeng", "Xihu") for r in body)
    closed = [r for r in body if r[STATUS] == messages.STATUS_NAMES["closed"]][0]
    assert closed[RATING] == messages.LEDGER_RATING.format(rating=5) + " " + messages.FEEDBACK_NAMES["solved"]
    assert all(r[RESIDENT] == "W********" for r in body)
    assert all(messages.MASK_PHONE in r[CONTENT] for r in body)
    assert_no_phone(repr(rows))


def test_export_csv_goes_to_stdout_with_a_bom_and_masked_rows(db_url: str, database: Database, clock: FrozenClock,
                                                                 tmp_path: Path) -> None:
    seed_ledger(database, clock)
    done = microwish(db_url, tmp_path, "export", "--format", "csv")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(b"\xef\xbb\xbf")
    text = done.stdout.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == messages.LEDGER_HEADERS and len(rows) == 9
    assert_no_phone(text)


def test_xlsx_export_needs_out(capsys: Any) -> None:
    from bot.cli import main

    assert main(["export", "--format", "xlsx"]) == 2
    assert "--out" in capsys.readouterr().err


def test_create_user_reads_the_password_and_never_makes_a_default(db_url: str, database: Database, clock: FrozenClock,
                                                                   tmp_path: Path) -> None:
    from bot.auth import AccountError, attempt_login, create_admin_user

    database.run_sync(seed_basics, clock.now())
    made = microwish(db_url, tmp_path, "admin", "create-user", "carol", "--community", "Xihu", "--password-stdin",
                     stdin="carol-secret-9\n")
    assert made.returncode == 0, made.stderr.decode()
    for name, password in (("carol", "another-pw-1"), ("dave", ""), ("erin", "short")):
        with pytest.raises(AccountError):
            database.run_sync(lambda uow: create_admin_user(uow, username=name, password=password), clock.now())
    settings = Settings(_env_file=None, database_url=db_url)  # type: ignore[call-arg]
    ok = database.run_sync(lambda uow: attempt_login(uow, username="carol", password="carol-secret-9", settings=settings), clock.now())
    assert ok.admin_id is not None
    nobody = database.run_sync(lambda uow: attempt_login(uow, username="admin", password="admin", settings=settings), clock.now())
    assert nobody.admin_id is None


async def test_the_dashboard_download_is_the_same_ledger_scoped_to_the_admin(
        aiohttp_client: Any, settings: Settings, clock: FrozenClock, database: Database, tmp_path: Path) -> None:
    seed = seed_ledger(database, clock)
    client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
    assert (await client.get("/admin/export.csv", allow_redirects=False)).status == 303
    await login(client, ROOT, ROOT_PW)
    resp = await client.get("/admin/export.csv")
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    raw = await resp.read()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 9 and raw.startswith(b"\xef\xbb\xbf")
    xlsx = await client.get("/admin/export.xlsx")
    path = tmp_path / "dl.xlsx"
    path.write_bytes(await xlsx.read())
    assert load_workbook(path).active.max_row == 9

    client.session.cookie_jar.clear()
    await login(client, ALICE, ALICE_PW)
    mine = list(csv.reader(io.StringIO((await (await client.get("/admin/export.csv")).read()).decode("utf-8-sig"))))
    assert [int(r[0]) for r in mine[1:]] == [i for i in range(1, 9) if i not in seed.wishes_b]
    assert_no_phone(repr(mine))
