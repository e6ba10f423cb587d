"""Pure schedule rules: digest periods and residents' quiet hours (local time, Asia/Shanghai)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.services.digest import last_complete_period
from bot.services.sweeps import is_quiet, out_of_quiet_hours, return_visit_due_at

TZ = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind, now, start, end", [
    ("week", "2026-03-02 10:00", "2026-02-23 00:00", "2026-03-02 00:00"),
    ("week", "2026-03-01 23:59", "2026-02-16 00:00", "2026-02-23 00:00"),
    ("week", "2026-01-01 12:00", "2025-12-22 00:00", "2025-12-29 00:00"),
    ("tenday", "2026-03-01 09:00", "2026-02-21 00:00", "2026-03-01 00:00"),
    ("tenday", "2026-03-10 23:59", "2026-02-21 00:00", "2026-03-01 00:00"),
    ("tenday", "2026-03-11 00:00", "2026-03-01 00:00", "2026-03-11 00:00"),
    ("tenday", "2026-03-25 12:00", "2026-03-11 00:00", "2026-03-21 00:00"),
    ("tenday", "2026-01-05 12:00", "2025-12-21 00:00", "2026-01-01 00:00"),
    ("month", "2026-03-01 09:00", "2026-02-01 00:00", "2026-03-01 00:00"),
    ("month", "2026-01-15 09:00", "2025-12-01 00:00", "2026-01-01 00:00"),
])
def test_last_complete_period_before_the_clock(settings: Settings, kind: str, now: str, start: str, end: str) -> None:
    period = last_complete_period(kind, local(now), settings)
    assert (period.start, period.end) == (local(start), local(end))
    assert period.send_at == local(end).replace(hour=9)


def test_a_clock_given_in_utc_is_read_in_local_time(settings: Settings) -> None:
    # 2026-03-01 17:00 UTC is Monday 2 March 01:00 in Shanghai: last week is already complete
    period = last_complete_period("week", datetime.fromisoformat("2026-03-01T17:00:00+00:00"), settings)
    assert period.start == local("2026-02-23 00:00")


@pytest.mark.parametrize("when, quiet", [
    ("2026-03-05 20:59", False), ("2026-03-05 21:00", True), ("2026-03-06 00:30", True),
    ("2026-03-06 07:59", True), ("2026-03-06 08:00", False), ("2026-03-06 12:00", False),
])
def test_quiet_hours_run_from_nine_in_the_evening_to_eight_in_the_morning(settings: Settings, when: str, quiet: bool) -> None:
    assert is_quiet(local(when), settings) is quiet


def test_prompt_due_in_quiet_hours_moves_to_their_end(settings: Settings) -> None:
    assert return_visit_due_at(local("2026-03-02 22:00"), settings) == local("2026-03-06 08:00")
    assert return_visit_due_at(local("2026-03-02 03:00"), settings) == local("2026-03-05 08:00")
    assert return_visit_due_at(local("2026-03-02 20:59"), settings) == local("2026-03-05 20:59")


def test_quiet_hours_that_do_not_wrap_midnight(settings: Settings) -> None:
    day_quiet = settings.model_copy(update={"quiet_start_hour": 12, "quiet_end_hour": 14})
    assert is_quiet(local("2026-03-05 13:00"), day_quiet)
    assert not is_quiet(local("2026-03-05 22:00"), day_quiet)
    assert out_of_quiet_hours(local("2026-03-05 12:30"), day_quiet) == local("2026-03-05 14:00")


def test_digest_lists_show_the_true_total_when_only_the_first_lines_are_loaded() -> None:
    from bot import messages
    from bot.services.digest import _list

    lines = [f"{i}号" for i in range(5)]
    out = _list("header", lines, 3, total=120)
    assert out[1:4] == lines[:3] and out[-1] == messages.DIGEST_MORE.format(n=117)
    assert _list("h", [], 3, total=0) == ["h", messages.DIGEST_NONE]
