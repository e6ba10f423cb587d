"""`microwish tick` and `microwish digest` end to end: sweeps, then delivery to the WeChat emulator."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest
from aiohttp import web

from bot import messages
from bot.cli import build_parser
from bot.clock import FrozenClock
from bot.config import ConfigError, Settings
from bot.sandbox.emulator import EmulatorState, create_emulator_app
from storage.db import Database
from tests.conftest import make_settings
from tests.integration.schedule_seed import add_person, add_wish, at, outbox_rows
from tests.support import ADMIN, RESIDENT, RESIDENT2

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {"return_visit": {"id": "TPL_RETURN_VISIT",
                              "fields": {"thing1": "{title}", "character_string2": "{code}", "time3": "{fulfilled_at}"}},
             "digest": {"id": "TPL_DIGEST", "fields": {"thing1": "{period}", "number2": "{count}"}}}


class Emulator:
    """The WeChat emulator served on 127.0.0.1 from its own thread (tick runs its own event loop)."""

    def __init__(self, clock: FrozenClock) -> None:
        self.state = EmulatorState(clock=clock)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(create_emulator_app(self.state))
        asyncio.run_coroutine_threadsafe(self.runner.setup(), self.loop).result()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(site.start(), self.loop).result()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{self.port}"

    def webhook(self, key: str) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={key}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def emu_clock() -> FrozenClock:
    return FrozenClock(at("2026-03-05 10:00"))


@pytest.fixture
def emulator(emu_clock: FrozenClock) -> Iterator[Emulator]:
    emu = Emulator(emu_clock)
    yield emu
    emu.close()


@pytest.fixture
def settings(db_url: str, emulator: Emulator) -> Settings:
    return make_settings(db_url, wechat_api_base=emulator.base, admin_webhook=emulator.webhook("admins"),
                         claim_webhook=emulator.webhook("claims"), templates=TEMPLATES)


def run_cli(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args, settings))


def test_tick_prints_a_line_per_sweep_and_delivers_prompts_in_window_and_as_template(
        database: Database, settings: Settings, emulator: Emulator, emu_clock: FrozenClock,
        capsys: pytest.CaptureFixture[str]) -> None:
    fulfilled = at("2026-03-02 10:00")
    talking = add_person(database, RESIDENT, last_inbound_at=at("2026-03-04 20:00"))  # window open
    silent = add_person(database, RESIDENT2, last_inbound_at=at("2026-02-20 20:00"))  # window long closed
    emulator.state.user_sent(RESIDENT, at("2026-03-04 20:00"))
    w1 = add_wish(database, talking, status="fulfilled", published=fulfilled - timedelta(days=2),
                  claimed=fulfilled - timedelta(days=1), fulfilled=fulfilled)
    w2 = add_wish(database, silent, status="fulfilled", text="想请人陪我去医院复查", published=fulfilled - timedelta(days=2),
                  claimed=fulfilled - timedelta(days=1), fulfilled=fulfilled)

    assert run_cli(settings, "tick", "--at", "2026-03-05T09:59") == 0
    out = capsys.readouterr().out.splitlines()
    assert "return_visit_prompts: 0 prompted" in out
    assert emulator.state.texts_to(RESIDENT) == []

    assert run_cli(settings, "tick", "--at", "2026-03-05T10:00") == 0  # no offset: local time
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "return_visit_prompts: 2 prompted"
    names = [line.split(":")[0] for line in out]
    assert names == ["return_visit_prompts", "return_visit_reminders", "phone_visits", "contact_lapses", "claims_due_soon",
                     "claims_overdue", "monday_nudge", "reposts", "digests", "outbox"]
    template = {"code": str(w1), "title": "想请人帮忙修一下家里的水龙头", "fulfilled_at": "3月2日 10:00"}
    assert emulator.state.texts_to(RESIDENT) == [messages.RETURN_VISIT_PROMPT.format(**template)]
    [sent] = emulator.state.templates_to(RESIDENT2)  # outside the 48-hour window: the template
    assert sent["template_id"] == "TPL_RETURN_VISIT"
    assert sent["data"] == {"thing1": {"value": "想请人陪我去医院复查"}, "character_string2": {"value": str(w2)},
                            "time3": {"value": "3月2日 10:00"}}
    assert all(r.state == "sent" for r in outbox_rows(database, kind="return_visit"))

    emu_clock.set(at("2026-03-05 10:05"))
    assert run_cli(settings, "tick", "--at", "2026-03-05T10:05") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "return_visit_prompts: 0 prompted" and out[-1] == "outbox: 0 delivered"
    assert len(emulator.state.texts_to(RESIDENT)) == 1 and len(emulator.state.templates_to(RESIDENT2)) == 1


def test_digest_command_prints_the_digest_and_send_delivers_markdown_chart_and_admin_template(
        database: Database, settings: Settings, emulator: Emulator, emu_clock: FrozenClock,
        capsys: pytest.CaptureFixture[str]) -> None:
    add_person(database, ADMIN, role="admin")
    resident = add_person(database, RESIDENT)
    add_wish(database, resident, status="published", created=at("2026-02-24 09:00"), published=at("2026-02-24 10:00"))
    emu_clock.set(at("2026-03-02 10:00"))

    assert run_cli(settings, "digest", "--period", "week", "--at", "2026-03-02T10:00") == 0
    printed = capsys.readouterr().out
    assert printed.startswith(messages.DIGEST_TITLE.format(name="周报", start="2月23日", end="3月1日"))
    assert messages.DIGEST_RATE_LINE.format(name="响应率", pct="0%", num=0, den=1) in printed
    assert outbox_rows(database) == []  # printing queues nothing

    assert run_cli(settings, "digest", "--period", "week", "--at", "2026-03-02T10:00", "--send") == 0
    out = capsys.readouterr().out.splitlines()
    assert "digest: 3 messages queued" in out and out[-1] == "outbox: 3 delivered"
    posts = emulator.state.webhook_posts("admins")
    assert [p["msgtype"] for p in posts] == ["markdown", "image"]
    assert posts[0]["markdown"]["content"].startswith(messages.DIGEST_TITLE.format(name="周报", start="2月23日", end="3月1日"))
    [sent] = emulator.state.templates_to(ADMIN)
    assert sent["template_id"] == "TPL_DIGEST"
    assert sent["data"] == {"thing1": {"value": "周报 02.23—03.01"}, "number2": {"value": "1"}}


def test_console_script_tick_runs_against_a_fresh_sqlite_file(sqlite_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROWISH_")}
    env.update(MICROWISH_DATABASE_URL=sqlite_url, MICROWISH_SANDBOX="off", MICROWISH_LOG_FORMAT="console",
               MICROWISH_WECHAT_API_BASE="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "bot", "tick", "--at", "2026-03-04T12:00:00+08:00"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 10 and lines[-1] == "outbox: 0 delivered"
    assert "digests: 3 digests queued" in lines  # last week, February's last ten days and February


def test_tick_refuses_a_bad_time(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="ISO 8601"):
        run_cli(make_settings(sqlite_url), "tick", "--at", "next tuesday")
