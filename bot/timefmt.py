"""Rendering times for people: local time (MICROWISH_TIMEZONE), short Chinese formats."""

from __future__ import annotations

from datetime import datetime

from bot.config import Settings


def local(dt: datetime, settings: Settings) -> datetime:
    return dt.astimezone(settings.tz)


def fmt_datetime(dt: datetime | None, settings: Settings) -> str:
    """`3月2日 10:05` in local time."""
    if dt is None:
        return ""
    d = local(dt, settings)
    return f"{d.month}月{d.day}日 {d:%H:%M}"


def fmt_date(dt: datetime | None, settings: Settings) -> str:
    """`3月9日` in local time."""
    if dt is None:
        return ""
    d = local(dt, settings)
    return f"{d.month}月{d.day}日"


def fmt_iso_local(dt: datetime | None, settings: Settings) -> str:
    """`2026-03-02 10:05` in local time (ledger, dashboard)."""
    return "" if dt is None else local(dt, settings).strftime("%Y-%m-%d %H:%M")
