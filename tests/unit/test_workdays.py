"""Promised days on the official holiday calendar (chinese-calendar), and the calendar-day fallback."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.workdays import add_days, is_working_day

TZ = ZoneInfo("Asia/Shanghai")
WORKING = Settings(_env_file=None, working_days=True)  # type: ignore[call-arg]
CALENDAR = Settings(_env_file=None, working_days=False)  # type: ignore[call-arg]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_calendar_days_are_24_hour_steps() -> None:
    assert add_days(at("2026-09-30 10:00"), 2, CALENDAR) == at("2026-10-02 10:00")


def test_a_weekend_is_skipped() -> None:
    assert add_days(at("2026-03-06 15:30"), 2, WORKING) == at("2026-03-10 15:30")  # Friday → Tuesday


def test_the_national_day_holiday_is_skipped() -> None:
    # 2026: 1–7 October off; 30 September is a working day.
    assert add_days(at("2026-09-30 10:00"), 1, WORKING) == at("2026-10-08 10:00")


def test_an_adjusted_weekend_workday_counts() -> None:
    # Spring Festival 2026: Saturday 14 February is an official working day (调休).
    assert is_working_day(date(2026, 2, 14)) and not is_working_day(date(2026, 2, 17))
    assert add_days(at("2026-02-13 09:00"), 1, WORKING) == at("2026-02-14 09:00")


def test_years_without_data_fall_back_to_calendar_days() -> None:
    assert is_working_day(date(2099, 1, 1))
    start = at("2099-01-02 10:00")  # a Friday, but the package has no 2099 calendar
    assert add_days(start, 2, WORKING) == start + timedelta(days=2)


def test_the_result_keeps_the_callers_time_zone() -> None:
    start = at("2026-03-06 15:30").astimezone(ZoneInfo("UTC"))
    end = add_days(start, 2, WORKING)
    assert end.tzinfo == ZoneInfo("UTC") and end == at("2026-03-10 15:30")
