"""Work that grows with the data: `python -m benchmarks.scale probe DB_URL` (one JSON line).

On a seeded database (benchmarks/seed.py) it times, in a fresh process so the peak RSS is its
own: the monthly digest (build + render), the return-visit prompt sweep and every due sweep once
(`tick`), and the `/admin` wishes page (first page, a deep keyset page, and the overview).
`python -m benchmarks.scale outbox` measures the outbox dispatch rate to the emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import create_engine, func, select

from bot.config import Settings


def _settings(url: str, **extra: Any) -> Settings:
    return Settings(_env_file=None, database_url=url, sandbox="off", log_format="json", **extra)  # type: ignore[call-arg]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def probe(url: str, *, tick: bool = True) -> dict[str, Any]:
    from bot import logs
    from bot.admin_web.queries import WishFilter, overview, wishes_page
    from bot.auth import AdminView
    from bot.services import digest
    from bot.services.sweeps import run_due_sweeps, sweep_return_visit_prompts
    from storage.db import Database
    from storage.models import Wish

    logs.configure("json", level=40)
    settings = _settings(url)
    db = Database(url, writers=1)
    now = datetime.now(timezone.utc).replace(hour=2)  # 10:00 in Shanghai: outside quiet hours
    out: dict[str, Any] = {}
    try:
        out["wishes"] = db.run_sync(lambda uow: uow.session.execute(select(func.count()).select_from(Wish)).scalar_one(), now, False)
        period = digest.last_complete_period("month", now, settings)
        out["digest_s"], _ = _timed(lambda: db.run_sync(
            lambda uow: digest.render_digest(digest.build_digest(uow, settings, period), settings), now, False))
        out["return_visit_sweep_s"], out["prompted"] = _timed(lambda: db.run_sync(
            lambda uow: sweep_return_visit_prompts(uow, settings), now))
        if tick:
            out["tick_s"], _ = _timed(lambda: run_due_sweeps(db, settings, now + timedelta(minutes=1)))
        admin = AdminView(1, "bench", 1, None, None)
        out["admin_page_ms"], page = _timed(lambda: db.run_sync(lambda uow: wishes_page(uow, admin, WishFilter()), now, False))
        deep = WishFilter(before=max(1, out["wishes"] // 2))
        out["admin_deep_page_ms"], _ = _timed(lambda: db.run_sync(lambda uow: wishes_page(uow, admin, deep), now, False))
        out["admin_claimed_page_ms"], _ = _timed(lambda: db.run_sync(
            lambda uow: wishes_page(uow, admin, WishFilter(state="claimed")), now, False))
        out["overview_ms"], _ = _timed(lambda: db.run_sync(lambda uow: overview(uow, admin, settings), now, False))
        for k in ("admin_page_ms", "admin_deep_page_ms", "admin_claimed_page_ms", "overview_ms"):
            out[k] *= 1000
    finally:
        db.close()
    out["peak_rss_mb"] = _peak_rss_mb()
    out["load_avg_1m"] = os.getloadavg()[0]  # the machine may be shared: every figure with its load
    return out


# -- outbox ---------------------------------------------------------------------------------

EMU_USERS = "oOutboxBench"


def emulator_main(port: int, users: int) -> None:
    """The emulator on its own process and port, every bench user's window open."""
    from aiohttp import web

    from bot.sandbox.emulator import EmulatorState, create_emulator_app

    state = EmulatorState(webhook_per_minute=10**9)
    for i in range(users):
        state.user_sent(f"{EMU_USERS}{i:016d}")
    web.run_app(create_emulator_app(state), host="127.0.0.1", port=port, print=None, access_log=None)


def outbox_rate(url: str, messages: int, port: int, emulator_pid: int | None = None) -> dict[str, float]:
    """Queue `messages` customer-service rows (one per user) and time one `deliver_due` to the emulator.

    Besides the rate, the CPU seconds per 1,000 messages of this process (the dispatcher: the
    event loop plus the database threads) and of the emulator's process, which are steadier than
    messages/s on a shared machine.
    """
    from bot.outbox import deliver_due
    from bot.services import notify
    from storage.db import Database
    from storage.migrate import upgrade
    from storage.models import Person
    from bot import logs

    logs.configure("json", level=40)
    upgrade(url)
    now = datetime.now(timezone.utc)
    eng = create_engine(url)
    with eng.begin() as c:
        from sqlalchemy import insert

        c.execute(insert(Person), [{"openid": f"{EMU_USERS}{i:016d}", "role": "resident", "created_at": now, "skills": "",
                                    "subscribed": True, "window_sent": 0, "last_inbound_at": now} for i in range(messages)])
    eng.dispose()
    db = Database(url)
    try:
        def queue(uow: Any) -> None:
            for p in uow.session.execute(select(Person).where(Person.openid.like(f"{EMU_USERS}%"))).scalars():
                notify.to_person(uow, p, "您的心愿有新进展，发“进度”查看。", kind="progress")

        db.run_sync(queue, now)
        settings = _settings(url, wechat_api_base=f"http://127.0.0.1:{port}", wechat_app_id="wxbench", wechat_app_secret="s",
                             wechat_token="benchtoken1")
        emu_cpu0 = _proc_cpu(emulator_pid)
        cpu0 = time.process_time()
        t = time.perf_counter()
        sent = asyncio.run(deliver_due(db, settings, now))
        elapsed = time.perf_counter() - t
        cpu = time.process_time() - cpu0
        emu_cpu = _proc_cpu(emulator_pid) - emu_cpu0
    finally:
        db.close()
    per_k = 1000 / max(sent, 1)
    return {"messages": sent, "seconds": elapsed, "per_s": sent / elapsed if elapsed else 0.0,
            "dispatcher_cpu_s_per_1k": cpu * per_k, "emulator_cpu_s_per_1k": emu_cpu * per_k,
            "load_avg_1m": os.getloadavg()[0]}


def _proc_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    from benchmarks.__main__ import proc_cpu_seconds

    return proc_cpu_seconds(pid)


def run_outbox(url: str, messages: int = 3000) -> dict[str, float]:
    from benchmarks.__main__ import free_port, wait_port

    port = free_port()
    emu = subprocess.Popen([sys.executable, "-m", "benchmarks.scale", "emulator", str(port), str(messages)],
                           stderr=subprocess.PIPE)
    try:
        wait_port(port, emu)
        return outbox_rate(url, messages, port, emu.pid)
    finally:
        emu.terminate()
        emu.wait(timeout=20)


def run_probe(url: str, *, tick: bool = True) -> dict[str, Any]:
    args = [sys.executable, "-m", "benchmarks.scale", "probe", url] + ([] if tick else ["--no-tick"])
    out = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "probe":
        print(json.dumps(probe(sys.argv[2], tick="--no-tick" not in sys.argv)))
        return 0
    if cmd == "emulator":
        emulator_main(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    if cmd == "outbox":  # outbox [sqlite | postgresql] [MESSAGES]: a fresh database each time
        backend = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
        messages = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
        if backend == "postgresql":
            from benchmarks.__main__ import pg_database

            url = pg_database("microwish_bench_outbox")
            if url is None:
                return 1
            print(json.dumps({"backend": backend, **run_outbox(url, messages)}))
            return 0
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps({"backend": "sqlite", **run_outbox(f"sqlite:///{Path(d)}/outbox.db", messages)}))
        return 0
    print("usage: python -m benchmarks.scale probe DB_URL | outbox [sqlite|postgresql] [MESSAGES]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
