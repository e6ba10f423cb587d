"""Fixtures: real SQLite and PostgreSQL databases built by the migrations, a frozen clock, the bot.

PostgreSQL runs where `MICROWISH_TEST_DATABASE_URL` is set or a server answers on
127.0.0.1:5432 (database `test`); under CI=true an unreachable server fails the run.
Each test session gets its own PostgreSQL database (dropped at the end), so parallel runs
do not meet; tables are truncated between tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.clock import FrozenClock
from bot.config import Settings
from storage.db import Database
from storage.migrate import upgrade
from tests.support import ADMIN, AES_KEY, APP_ID, TOKEN, ChatClient

from hypothesis import settings as hypothesis_settings

# CI runs the same examples every time (a red CI names a reproducible case); locally the
# search stays random so new cases keep being tried.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime.fromisoformat("2026-03-02T10:00:00+08:00")  # a Monday


def _pg_admin_url() -> str | None:
    url = os.environ.get("MICROWISH_TEST_DATABASE_URL") or PG_DEFAULT
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        eng = create_engine(url, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return url
    except Exception as exc:
        if os.environ.get("CI") == "true" or os.environ.get("MICROWISH_TEST_DATABASE_URL"):
            raise RuntimeError(f"PostgreSQL is required here but did not answer at {make_url(url).render_as_string(hide_password=True)}: {exc}")
        return None


_PG_URL: str | None | bool = False


def pg_admin_url() -> str | None:
    global _PG_URL
    if _PG_URL is False:
        _PG_URL = _pg_admin_url()
    return _PG_URL  # type: ignore[return-value]


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    admin = pg_admin_url()
    if admin is None:
        yield None
        return
    name = f"mw_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with eng.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    eng.dispose()


def _truncate_pg(url: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    eng.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "microwish.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    if url is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    _truncate_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only, for tests that are about the gateway rather than the database."""
    path = tmp_path / "microwish.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=db_url, wechat_token=TOKEN, wechat_app_id=APP_ID, wechat_aes_key=AES_KEY,
        wechat_app_secret="secret", sandbox="off", admin_openids=[ADMIN], wechat_api_base="http://127.0.0.1:9",
        log_format="console",
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    yield db
    db.close()


@pytest.fixture
async def bot(aiohttp_client: Any, settings: Settings, clock: FrozenClock, database: Database) -> AsyncIterator[ChatClient]:
    """The bot over real HTTP on loopback, in plaintext mode, with a frozen clock."""
    from bot.app import create_app

    app = create_app(settings, clock=clock, database=database, background=False)
    client = await aiohttp_client(app)
    yield ChatClient(client, clock=clock)
    await client.close()  # the app's cleanup runs while the database is still open
