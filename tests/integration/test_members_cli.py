"""`microwish members invite|import`, run in-process against SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.cli import main
from bot.clock import SystemClock
from bot.services import members
from storage.db import Database, UnitOfWork
from storage.models import InviteCode, OrgUnit, Person
from tests.conftest import make_settings
from tests.integration.member_helpers import rows

CODE_RE = re.compile(r"^[A-Z2-9]{8}$")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, db_url: str) -> str:
    monkeypatch.setenv("MICROWISH_DATABASE_URL", db_url)
    monkeypatch.setenv("MICROWISH_SANDBOX", "on")
    return db_url


def test_invite_prints_one_new_code_per_line(cli_env: str, database: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["members", "invite", "--branch", "幸福社区第一支部", "--count", "3"]) == 0
    codes = capsys.readouterr().out.split()
    assert len(codes) == 3 == len(set(codes)) and all(CODE_RE.match(c) for c in codes)
    stored = rows(database, InviteCode)
    assert sorted(r.code for r in stored) == sorted(codes)
    assert {r.branch_id for r in stored} == {rows(database, OrgUnit, OrgUnit.kind == "branch")[0].id}
    assert all((r.expires_at - r.created_at).days == 30 for r in stored)


def test_invite_refuses_a_bad_count(cli_env: str, database: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["members", "invite", "--branch", "支部", "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err and rows(database, InviteCode) == []


def write_csv(path: Path, text: str, encoding: str = "utf-8-sig") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_import_csv_prints_a_personal_code_per_member_that_binds(
        cli_env: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = write_csv(tmp_path / "党员.csv", "姓名,手机,支部,社区,网格,特长\n"
                         "张三,138 0013 8000,第一支部,幸福社区,一网格,维修 助老陪伴\n"
                         "\n"
                         "李四,,第二支部,幸福社区,,法律咨询\n", encoding="gb18030")

    assert main(["members", "import", str(csv_file)]) == 0

    out = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(name, branch) for _, name, branch in out] == [("张三", "第一支部"), ("李四", "第二支部")]
    codes = {name: code for code, name, _ in out}
    stored = {r.name: r for r in rows(database, InviteCode)}
    assert stored["张三"].phone == "13800138000" and stored["张三"].skills == "维修 助老陪伴"
    assert stored["李四"].grid_id is None and stored["李四"].community_id is not None

    def bind(uow: UnitOfWork) -> Person:
        p = uow.people.ensure("o_cli_member_000000000000001", now=uow.now)
        return members.bind_member(uow, person=p, code=codes["张三"], name=None, settings=make_settings(cli_env))

    bound = database.run_sync(bind, SystemClock().now())
    assert bound.name == "张三" and bound.role == "member" and bound.skills == "维修 助老陪伴"


def test_import_xlsx_with_english_headers(cli_env: str, database: Database, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["name", "phone", "branch", "community", "grid", "skills"])
    ws.append(["王五", 13900001111, "阳光支部", "阳光社区", "阳光一网格", "心理疏导，助学"])
    wb.save(tmp_path / "members.xlsx")

    assert main(["members", "import", str(tmp_path / "members.xlsx")]) == 0

    [line] = capsys.readouterr().out.splitlines()
    code, name, branch = line.split("\t")
    assert CODE_RE.match(code) and (name, branch) == ("王五", "阳光支部")
    [row] = rows(database, InviteCode)
    assert row.phone == "13900001111" and row.skills == "心理疏导 助学"


def test_import_with_bad_rows_names_every_one_and_imports_nothing(
        cli_env: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = write_csv(tmp_path / "bad.csv", "姓名,手机,支部,社区\n"
                         "张三,13800138000,第一支部,幸福社区\n"
                         ",13800138001,第一支部,幸福社区\n"
                         "李四,12345,第一支部,幸福社区\n"
                         "王五,13800138000,第一支部,幸福社区\n"
                         "赵六,13800138002,,幸福社区\n")

    assert main(["members", "import", str(csv_file)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert "4 bad row(s)" in err and "nothing was imported" in err
    assert "line 3: name is empty" in err and "line 4: phone '12345'" in err
    assert "line 5: phone repeats line 2" in err and "line 6: branch is empty" in err
    assert "line 2" not in err.replace("repeats line 2", "")
    assert rows(database, InviteCode) == [] and rows(database, OrgUnit) == []


def test_import_refuses_unknown_files_and_headers(cli_env: str, database: Database, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.txt").write_text("姓名,支部\n张三,一支部\n")
    assert main(["members", "import", str(tmp_path / "m.txt")]) == 1
    no_branch = write_csv(tmp_path / "m.csv", "姓名,手机\n张三,13800138000\n")
    assert main(["members", "import", str(no_branch)]) == 1
    assert main(["members", "import", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert "only .csv and .xlsx" in err and "branch" in err and "no such file" in err
    assert rows(database, InviteCode) == []


def test_import_refuses_a_phone_that_already_belongs_to_a_member(
        cli_env: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = write_csv(tmp_path / "a.csv", "姓名,手机,支部\n张三,13800138000,第一支部\n")
    assert main(["members", "import", str(first)]) == 0
    code = capsys.readouterr().out.split("\t")[0]

    def bind(uow: UnitOfWork) -> Person:
        p = uow.people.ensure("o_cli_member_000000000000002", now=uow.now)
        return members.bind_member(uow, person=p, code=code, name=None, settings=make_settings(cli_env))

    database.run_sync(bind, SystemClock().now())
    again = write_csv(tmp_path / "b.csv", "姓名,手机,支部\n李四,13900000000,第一支部\n张三,13800138000,第一支部\n")

    assert main(["members", "import", str(again)]) == 1

    err = capsys.readouterr().err
    assert "line 3: phone 13800138000 already belongs to a bound member" in err and "line 2" not in err
    assert [r.name for r in rows(database, InviteCode)] == ["张三"]
