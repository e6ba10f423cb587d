"""Promised days: calendar days, or working days on the official Chinese holiday calendar.

With `settings.working_days` a promise of N days ends N working days later at the same local
time, counting adjusted weekend workdays (调休) and skipping public holidays, as published by
the State Council and kept in the `chinese-calendar` package. Dates the package has no data
for (years it does not cover yet) count as calendar days, so a deadline is never refused.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar

from bot.config import Settings


def is_working_day(day: date) -> bool:
    """True on an official working day; every day counts outside the package's years."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # the package raises this for years it has no data for
        return True


def add_days(start: datetime, days: int, settings: Settings) -> datetime:
    """`start` plus `days` promised days: N × 24 hours, or N working days when working_days is on."""
    if not settings.working_days or days <= 0:
        return start + timedelta(days=days)
    local = start.astimezone(settings.tz)
    day, counted = local.date(), 0
    while counted < days:
        day += timedelta(days=1)
        counted += is_working_day(day)
    end = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=settings.tz)
    return end.astimezone(start.tzinfo)
