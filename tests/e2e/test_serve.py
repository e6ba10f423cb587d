"""`microwish serve` as an operator runs it: a real process, SQLite, the README's request."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bot import messages
from bot.config import SANDBOX_TOKEN
from tests.support import reply_content, signed_request, text_xml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROWISH_")}
    env.update({"MICROWISH_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db", "MICROWISH_LOG_FORMAT": "json"}, **extra)
    return env


def wait_healthy(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not become healthy")


def test_serve_in_sandbox_mode_answers_a_signed_wish(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], cwd=tmp_path,
                            env=clean_env(tmp_path), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc)
        req = signed_request(text_xml("oDemoResident01", "许愿 想请人帮忙修一下家里的水龙头", msg_id=4242), token=SANDBOX_TOKEN)
        url = f"http://127.0.0.1:{port}/wechat?" + "&".join(f"{k}={v}" for k, v in req.query.items())
        with urllib.request.urlopen(urllib.request.Request(url, data=req.body), timeout=5) as r:
            reply = reply_content(r.read().decode())
        assert reply is not None and reply.startswith(messages.WISH_OK.format(code=1))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    log = err.decode()
    assert "/sandbox" in log  # the sandbox page's URL is printed
    assert "oDemoResident01" not in log and "水龙头" not in log  # no openids or content in logs


def test_serve_refuses_to_start_without_token_when_sandbox_is_off(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, capture_output=True, timeout=30,
                          env=clean_env(tmp_path, MICROWISH_SANDBOX="off"))
    assert proc.returncode == 2
    assert b"MICROWISH_WECHAT_TOKEN" in proc.stderr


def test_bad_configuration_is_named_at_start(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=tmp_path, capture_output=True, timeout=30,
                          env=clean_env(tmp_path, MICROWISH_WECHAT_AES_KEY="tooshort", MICROWISH_WECHAT_APP_ID="wx1"))
    assert proc.returncode == 2 and b"MICROWISH_WECHAT_AES_KEY" in proc.stderr and b"43" in proc.stderr


def test_db_upgrade_migrates_an_empty_database(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=tmp_path, capture_output=True, timeout=60,
                          env=clean_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(tmp_path / "serve.db").execute("select name from sqlite_master where type='table'")}
    assert {"wish", "wish_event", "person", "inbound_log", "outbox", "alembic_version"} <= tables
