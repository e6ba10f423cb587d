"""`make bench`: drive real servers over 127.0.0.1 with wrk and print a table.

Every figure is also given as a ratio to a bare aiohttp handler measured in the same run.
Requests are pre-signed exactly as WeChat signs them (unique MsgIds, many users); the Lua
script checks every reply. Needs `wrk` (Debian package) and, for the PostgreSQL rows, a
server on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.requests import write_requests

HERE = Path(__file__).parent
TOKEN = "benchtoken1"
PG_ADMIN = os.environ.get("MICROWISH_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    rss_mb: float
    bad: int
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited (exit code {proc.returncode}; see its log)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def start_bot(port: int, db_url: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROWISH_")}
    env.update(MICROWISH_DATABASE_URL=db_url, MICROWISH_WECHAT_TOKEN=TOKEN, MICROWISH_SANDBOX="off",
               MICROWISH_LOG_FORMAT="json", MICROWISH_RESIDENT_MAX_OPEN="1000000", MICROWISH_RESIDENT_MAX_PER_DAY="1000000",
               MICROWISH_MEMBER_MAX_OPEN_CLAIMS="1000000", MICROWISH_WECHAT_API_BASE="http://127.0.0.1:9")
    log = open(workdir / f"serve-{port}-{time.monotonic_ns()}.log", "wb")  # a pipe nobody reads would stall the server
    return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), "--reuse-port"], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)


def wrk(port: int, requests_file: Path, expect: str, seconds: int, connections: int = 64, threads: int = 1) -> dict[str, float]:
    env = dict(os.environ, BENCH_REQUESTS=str(requests_file), BENCH_EXPECT=expect, BENCH_THREADS=str(threads))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(HERE / "load.lua"),
                          f"http://127.0.0.1:{port}/wechat"], env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(out.stdout + out.stderr)
    return {k: float(v) for k, v in (p.split("=") for p in line.split()[1:])}


def measure(name: str, pids: list[int], run: callable) -> Result:  # type: ignore[valid-type]
    cpu0 = sum(proc_cpu_seconds(p) for p in pids)
    r = run()
    cpu = sum(proc_cpu_seconds(p) for p in pids) - cpu0
    result = Result(name, r["requests"] / r["seconds"], r["p50_us"] / 1000, r["p99_us"] / 1000,
                    cpu / max(r["requests"], 1) * 1e6, max(proc_peak_rss_mb(p) for p in pids), int(r["bad"]), int(r["errors"]))
    print(f"  {name}: {result.rps:.0f} req/s, p99 {result.p99_ms:.1f} ms, bad {result.bad} [load {os.getloadavg()[0]:.2f}]",
          file=sys.stderr, flush=True)
    return result


def pg_database(name: str) -> str | None:
    try:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
        return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    except Exception as exc:  # PostgreSQL rows are skipped when no server answers
        print(f"(PostgreSQL unavailable: {exc})", file=sys.stderr)
        return None


def seed_claimable(db_url: str, n_wishes: int, n_members: int) -> list[int]:
    """Published wishes and bound members for the 认领 path, written directly (fast)."""
    from datetime import datetime, timezone

    from sqlalchemy import create_engine, insert

    from storage.models import Person, Wish

    now = datetime.now(timezone.utc)
    eng = create_engine(db_url)
    with eng.begin() as c:
        c.execute(insert(Person), [{"openid": f"oBenchMember{i:016d}", "role": "member", "name": f"党员{i}", "created_at": now,
                                    "skills": "", "subscribed": True, "window_sent": 0} for i in range(n_members)])
        rid = c.execute(insert(Person).values(openid="oBenchOwner", role="resident", created_at=now, skills="",
                                              subscribed=True, window_sent=0)).inserted_primary_key[0]
        c.execute(insert(Wish), [{"resident_id": rid, "status": "published", "version": 1, "tier": "personal", "category": "维修",
                                  "content": f"心愿{i}", "masked": f"心愿{i}", "private_details": {}, "source": "text",
                                  "concerns_minor": False, "public": True, "created_at": now, "published_at": now}
                                 for i in range(n_wishes)])
    eng.dispose()
    return list(range(1, n_wishes + 1))


def run_bare(name: str, requests_file: Path, seconds: int) -> Result:
    """The ceiling: a bare aiohttp handler answering `success`, in its own process."""
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "benchmarks.bare", str(port)], stderr=subprocess.PIPE)
    try:
        wait_port(port, bare)
        return measure(name, [bare.pid], lambda: wrk(port, requests_file, "success", seconds))
    finally:
        bare.terminate()
        bare.wait()


def run_bot_case(name: str, db_url: str, kind: str, expect: str, *, seconds: int, processes: int, tmp: Path,
                 count: int = 200_000, seed_claims: bool = False) -> Result:
    from storage.migrate import upgrade

    upgrade(db_url)
    codes = seed_claimable(db_url, count, 2000) if seed_claims else None
    port = free_port()
    procs = [start_bot(port, db_url, tmp) for _ in range(processes)]
    try:
        for p in procs:
            wait_port(port, p)
        time.sleep(1.5 if processes > 1 else 0.5)
        req = tmp / f"{kind}.txt"
        write_requests(req, token=TOKEN, kind=kind, count=count, codes=codes, start_id=int(time.time() * 1000))
        return measure(name, [p.pid for p in procs], lambda: wrk(port, req, expect, seconds))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3-second runs, SQLite only, no scale section")
    ap.add_argument("--scale", default="10000,100000,1000000", help="wish counts for the scale section ('' to skip)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    seconds = 3 if args.quick else args.seconds
    load_before = f"{os.getloadavg()[0]:.2f}"
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        write_requests(tmp / "bare.txt", token=TOKEN, kind="help", count=50_000)
        results.append(run_bare("bare aiohttp (before)", tmp / "bare.txt", seconds))
        results.append(run_bot_case("帮助 SQLite", f"sqlite:///{tmp}/help.db", "help", "CDATA[", seconds=seconds, processes=1, tmp=tmp))
        results.append(run_bot_case("许愿 SQLite", f"sqlite:///{tmp}/wish.db", "wish", "编号", seconds=seconds, processes=1, tmp=tmp))
        # The ceiling again after the SQLite rows: this shared machine's speed drifts by tens of
        # per cent within minutes, so every ratio is taken against the mean of the two.
        results.append(run_bare("bare aiohttp (after)", tmp / "bare.txt", seconds))
        if not args.quick:
            results.append(run_bot_case("认领 SQLite", f"sqlite:///{tmp}/claim.db", "claim", "CDATA[", seconds=seconds, processes=1,
                                        tmp=tmp, count=60_000, seed_claims=True))
            for procs in (1, 2):
                url = pg_database(f"mw_bench_{procs}")
                if url:
                    results.append(run_bot_case(f"许愿 PostgreSQL ×{procs}", url, "wish", "编号", seconds=seconds, processes=procs, tmp=tmp))
            url = pg_database("mw_bench_help")
            if url:
                results.append(run_bot_case("帮助 PostgreSQL ×1", url, "help", "CDATA[", seconds=seconds, processes=1, tmp=tmp))
            url = pg_database("mw_bench_claim")
            if url:
                results.append(run_bot_case("认领 PostgreSQL ×1", url, "claim", "CDATA[", seconds=seconds, processes=1, tmp=tmp,
                                            count=60_000, seed_claims=True))
    bare = [r.rps for r in results if r.name.startswith("bare aiohttp")]
    ceiling = sum(bare) / len(bare)
    print(f"\nload average before: {load_before}, after: {os.getloadavg()[0]:.2f} (2 cores: figures under load > 1 are pessimistic)")
    print(f"\nceiling: {ceiling:.0f} req/s, the mean of the bare handler before and after the SQLite rows "
          f"({' and '.join(f'{b:.0f}' for b in bare)}); every ratio is to it")
    print(f"\n{'path':<24}{'req/s':>9}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}{'RSS MB':>9}{'bad':>6}{'errors':>8}")
    for r in results:
        print(f"{r.name:<24}{r.rps:>9.0f}{r.rps / ceiling:>8.2f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.cpu_us:>12.0f}{r.rss_mb:>9.0f}{r.bad:>6}{r.errors:>8}")
    pg = {r.name: r.rps for r in results}
    if "许愿 PostgreSQL ×1" in pg and "许愿 PostgreSQL ×2" in pg:
        print(f"\ntwo processes on PostgreSQL / one: {pg['许愿 PostgreSQL ×2'] / pg['许愿 PostgreSQL ×1']:.2f}×")
    if not args.quick and args.scale:
        scale_section([int(x) for x in args.scale.split(",")], seconds)
    return 0


def scale_section(sizes: list[int], seconds: int) -> None:
    """Outbox dispatch rate; digest, sweeps and the /admin page at growing sizes; RSS with the largest."""
    from sqlalchemy import create_engine

    from benchmarks import scale
    from benchmarks.seed import seed
    from storage.migrate import upgrade

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        o = scale.run_outbox(f"sqlite:///{tmp}/outbox.db")
        print(f"\noutbox → emulator (SQLite, {o['messages']:.0f} customer-service messages): {o['per_s']:.0f} messages/s"
              f"  [load {os.getloadavg()[0]:.2f}]", flush=True)
        print(f"\n{'wishes':>9}{'seed s':>8}{'digest s':>10}{'rv sweep s':>12}{'tick s':>8}{'/admin ms':>11}{'deep ms':>9}"
              f"{'overview ms':>13}{'probe RSS MB':>14}{'load':>7}", flush=True)
        for n in sizes:
            url = f"sqlite:///{tmp}/scale_{n}.db"
            upgrade(url)
            t = time.perf_counter()
            eng = create_engine(url)
            seed(eng, n)
            eng.dispose()
            seeded = time.perf_counter() - t
            p = scale.run_probe(url, tick=n <= 100_000)
            tick = f"{p['tick_s']:>8.1f}" if "tick_s" in p else f"{'—':>8}"
            print(f"{n:>9}{seeded:>8.0f}{p['digest_s']:>10.2f}{p['return_visit_sweep_s']:>12.2f}{tick}{p['admin_page_ms']:>11.0f}"
                  f"{p['admin_deep_page_ms']:>9.0f}{p['overview_ms']:>13.0f}{p['peak_rss_mb']:>14.0f}{os.getloadavg()[0]:>7.2f}", flush=True)
        big = sizes[-1]
        port = free_port()
        proc = start_bot(port, f"sqlite:///{tmp}/scale_{big}.db", tmp)
        try:
            wait_port(port, proc)
            time.sleep(0.5)
            for kind, expect in (("help", "CDATA["), ("wish", "编号")):
                req = tmp / f"big_{kind}.txt"
                write_requests(req, token=TOKEN, kind=kind, count=100_000, start_id=int(time.time() * 1000))
                r = measure(f"{kind} with {big} wishes", [proc.pid], lambda: wrk(port, req, expect, seconds))
                print(f"serve on {big:,} wishes, {kind}: {r.rps:.0f} req/s, p99 {r.p99_ms:.1f} ms, peak RSS {r.rss_mb:.0f} MB, "
                      f"bad {r.bad}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    raise SystemExit(main())
