"""Scheduled sweeps under a controlled clock: return visits, claim reminders, nudges, reposts."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Any

from bot import messages
from bot.config import Settings
from bot.services import stats
from bot.services.sweeps import return_visit_due_at, run_due_sweeps
from bot.timefmt import fmt_datetime
from storage.db import Database
from tests.integration.schedule_seed import (
    add_claim, add_person, add_wish, at, events_of, outbox_rows, wish_row,
)
from tests.support import ADMIN, MEMBER, RESIDENT, RESIDENT2

MEMBER2 = "o_member_0000000000000000002"


def tick(database: Database, settings: Settings, when: datetime) -> dict[str, int]:
    outcomes = run_due_sweeps(database, settings, when)
    assert all(o.error is None for o in outcomes), [o.line() for o in outcomes]
    return {o.sweep.name: o.count for o in outcomes}


def texts(database: Database, openid: str, kind: str) -> list[str]:
    return [r.payload["text"] for r in outbox_rows(database, recipient=openid, kind=kind)]


def reminders(database: Database, openid: str) -> list[str]:
    """Claim reminders to a member, leaving out the Monday nudge (same kind)."""
    return [t for t in texts(database, openid, "reminder") if not t.startswith(messages.NUDGE_HEADER[:6])]


def fulfilled_wish(database: Database, fulfilled: datetime, openid: str = RESIDENT, text: str = "想请人帮忙修一下家里的水龙头") -> int:
    resident = add_person(database, openid)
    return add_wish(database, resident, status="fulfilled", text=text, published=fulfilled - timedelta(days=2),
                    claimed=fulfilled - timedelta(days=1), fulfilled=fulfilled)


# -- return visits --------------------------------------------------------------------------

def test_return_visit_prompt_goes_out_three_days_after_fulfilment_not_a_minute_earlier(database: Database, settings: Settings) -> None:
    wid = fulfilled_wish(database, at("2026-03-02 10:00"))
    assert tick(database, settings, at("2026-03-05 09:59"))["return_visit_prompts"] == 0
    assert texts(database, RESIDENT, "return_visit") == []

    assert tick(database, settings, at("2026-03-05 10:00"))["return_visit_prompts"] == 1
    [row] = outbox_rows(database, recipient=RESIDENT, kind="return_visit")
    template = {"code": str(wid), "title": "想请人帮忙修一下家里的水龙头", "fulfilled_at": "3月2日 10:00"}
    assert row.payload == {"text": messages.RETURN_VISIT_PROMPT.format(**template), "template": template}
    assert wish_row(database, wid).return_visit_prompted_at == at("2026-03-05 10:00")

    assert tick(database, settings, at("2026-03-05 10:01"))["return_visit_prompts"] == 0
    assert len(outbox_rows(database, recipient=RESIDENT)) == 1


def test_prompt_falling_in_quiet_hours_waits_until_eight(database: Database, settings: Settings) -> None:
    wid = fulfilled_wish(database, at("2026-03-02 22:00"))
    assert return_visit_due_at(at("2026-03-02 22:00"), settings) == at("2026-03-06 08:00")
    for when in ("2026-03-05 22:00", "2026-03-06 03:00", "2026-03-06 07:59"):
        assert tick(database, settings, at(when))["return_visit_prompts"] == 0
    assert texts(database, RESIDENT, "return_visit") == []
    assert tick(database, settings, at("2026-03-06 08:00"))["return_visit_prompts"] == 1
    assert wish_row(database, wid).return_visit_prompted_at == at("2026-03-06 08:00")


def test_title_is_the_masked_text_cut_to_twenty_characters(database: Database, settings: Settings) -> None:
    long_text = "家里老人腿脚不便，想请党员同志每周陪同去社区医院复查一次血压"
    wid = fulfilled_wish(database, at("2026-03-02 10:00"), text=long_text)
    tick(database, settings, at("2026-03-05 10:00"))
    [row] = outbox_rows(database, recipient=RESIDENT, kind="return_visit")
    assert row.payload["template"]["title"] == long_text[:19] + "…"
    assert len(row.payload["template"]["title"]) == 20
    assert row.payload["template"]["code"] == str(wid)


def test_reminder_two_days_after_prompt_then_phone_visit_list_after_seven(database: Database, settings: Settings) -> None:
    admin = add_person(database, ADMIN, role="admin")
    wid = fulfilled_wish(database, at("2026-03-02 10:00"))
    tick(database, settings, at("2026-03-05 10:00"))  # prompt

    assert tick(database, settings, at("2026-03-07 09:59"))["return_visit_reminders"] == 0
    assert tick(database, settings, at("2026-03-07 10:00"))["return_visit_reminders"] == 1
    assert tick(database, settings, at("2026-03-08 10:00"))["return_visit_reminders"] == 0
    template = {"code": str(wid), "title": "想请人帮忙修一下家里的水龙头", "fulfilled_at": "3月2日 10:00"}
    assert texts(database, RESIDENT, "return_visit") == [messages.RETURN_VISIT_PROMPT.format(**template),
                                                         messages.RETURN_VISIT_REMINDER.format(**template)]

    assert tick(database, settings, at("2026-03-12 09:59"))["phone_visits"] == 0
    assert tick(database, settings, at("2026-03-12 10:00"))["phone_visits"] == 1
    assert tick(database, settings, at("2026-03-13 10:00"))["phone_visits"] == 0
    wish = wish_row(database, wid)
    assert wish.phone_visit_since == at("2026-03-12 10:00")
    assert wish.status == "fulfilled"  # never closed silently
    assert events_of(database, wid).count("phone_visit") == 1
    alert = messages.PHONE_VISIT_ALERT.format(**template, days=7)
    assert [r.payload["content"] for r in outbox_rows(database, channel="admin_webhook", kind="alert")] == [alert]
    assert texts(database, ADMIN, "alert") == [alert]
    assert admin
    # the resident is not asked a third time
    assert len(texts(database, RESIDENT, "return_visit")) == 2
    shown = database.run_sync(lambda uow: stats.stats_text(uow, settings), at("2026-03-12 11:00"), write=False)
    assert messages.STATS_PHONE_VISITS.format(n=1, codes=str(wid)) in shown


def test_wishes_answered_or_closed_are_not_prompted_or_reminded(database: Database, settings: Settings) -> None:
    resident = add_person(database, RESIDENT)
    rated = add_wish(database, resident, status="rated", published=at("2026-02-20 10:00"), claimed=at("2026-02-21 10:00"),
                     fulfilled=at("2026-02-22 10:00"), rated=at("2026-02-23 10:00"), rating=5)
    closed = add_wish(database, resident, status="closed", published=at("2026-02-20 10:00"),
                      claimed=at("2026-02-21 10:00"), fulfilled=at("2026-02-22 10:00"))
    prompted = fulfilled_wish(database, at("2026-03-02 10:00"), openid=RESIDENT2)
    tick(database, settings, at("2026-03-05 10:00"))
    database.run_sync(lambda uow: setattr(uow.wishes.get(prompted), "status", "rated"), at("2026-03-06 10:00"))
    counts = tick(database, settings, at("2026-03-20 10:00"))
    assert counts["return_visit_reminders"] == 0 and counts["phone_visits"] == 0
    assert texts(database, RESIDENT, "return_visit") == []
    assert len(texts(database, RESIDENT2, "return_visit")) == 1
    assert wish_row(database, rated).return_visit_prompted_at is None
    assert wish_row(database, closed).return_visit_prompted_at is None


def test_resident_without_wechat_goes_straight_to_the_phone_visit_list(database: Database, settings: Settings) -> None:
    resident = add_person(database, None, name="王阿姨")
    wid = add_wish(database, resident, status="fulfilled", published=at("2026-02-27 10:00"),
                   claimed=at("2026-02-28 10:00"), fulfilled=at("2026-03-02 10:00"), source="proxy")
    tick(database, settings, at("2026-03-05 10:00"))
    assert wish_row(database, wid).phone_visit_since == at("2026-03-05 10:00")
    assert len(outbox_rows(database, channel="admin_webhook", kind="alert")) == 1
    tick(database, settings, at("2026-03-20 10:00"))
    assert len(outbox_rows(database, channel="admin_webhook", kind="alert")) == 1


# -- claims ---------------------------------------------------------------------------------

def claimed_wish(database: Database, member: int, *, claimed: datetime, due: datetime, resident: int | None = None,
                 text: str = "想请人帮忙修一下家里的水龙头") -> tuple[int, int]:
    resident = resident or add_person(database, None)
    wid = add_wish(database, resident, status="claimed", text=text, published=claimed - timedelta(hours=5),
                   claimed=claimed, member_id=member, due_at=due)
    return wid, add_claim(database, wid, member, claimed=claimed, due=due)


def test_claim_due_within_a_day_reminds_once_and_overdue_tells_member_and_admins_once(database: Database, settings: Settings) -> None:
    add_person(database, ADMIN, role="admin")
    member = add_person(database, MEMBER, role="member", name="李党员")
    wid, _ = claimed_wish(database, member, claimed=at("2026-03-02 10:00"), due=at("2026-03-09 18:00"))

    assert tick(database, settings, at("2026-03-08 17:59"))["claims_due_soon"] == 0
    assert tick(database, settings, at("2026-03-08 18:00"))["claims_due_soon"] == 1
    assert tick(database, settings, at("2026-03-09 12:00"))["claims_due_soon"] == 0
    due = "3月9日 18:00"
    title = "想请人帮忙修一下家里的水龙头"
    assert reminders(database, MEMBER) == [messages.CLAIM_DUE_SOON.format(code=wid, title=title, due=due)]

    assert tick(database, settings, at("2026-03-09 17:59"))["claims_overdue"] == 0
    assert tick(database, settings, at("2026-03-09 18:00"))["claims_overdue"] == 1
    assert tick(database, settings, at("2026-03-10 18:00"))["claims_overdue"] == 0
    assert reminders(database, MEMBER)[1:] == [messages.CLAIM_OVERDUE.format(code=wid, title=title, due=due)]
    admin_text = messages.CLAIM_OVERDUE_ADMIN.format(code=wid, title=title, name="李党员", due=due)
    assert texts(database, ADMIN, "alert") == [admin_text]
    assert [r.payload["content"] for r in outbox_rows(database, channel="admin_webhook", kind="alert")] == [admin_text]


def test_overdue_claim_caught_up_late_gets_no_due_soon_reminder(database: Database, settings: Settings) -> None:
    member = add_person(database, MEMBER, role="member")
    claimed_wish(database, member, claimed=at("2026-03-02 10:00"), due=at("2026-03-04 10:00"))
    counts = tick(database, settings, at("2026-03-10 10:00"))
    assert counts["claims_due_soon"] == 0 and counts["claims_overdue"] == 1
    assert len(reminders(database, MEMBER)) == 1


def test_monday_nudge_lists_each_members_open_claims_once_a_week(database: Database, settings: Settings) -> None:
    m1 = add_person(database, MEMBER, role="member")
    m2 = add_person(database, MEMBER2, role="member")
    add_person(database, "o_member_idle", role="member")
    a, _ = claimed_wish(database, m1, claimed=at("2026-03-03 10:00"), due=at("2026-03-20 18:00"))
    b, _ = claimed_wish(database, m1, claimed=at("2026-03-04 10:00"), due=at("2026-03-12 18:00"))
    c, _ = claimed_wish(database, m2, claimed=at("2026-03-04 10:00"), due=at("2026-03-21 18:00"))
    # a finished claim is not listed
    done = add_wish(database, add_person(database, None), status="fulfilled", published=at("2026-03-01 10:00"),
                    claimed=at("2026-03-02 10:00"), fulfilled=at("2026-03-05 10:00"), member_id=m2)
    add_claim(database, done, m2, claimed=at("2026-03-02 10:00"), due=at("2026-03-09 10:00"),
              ended=at("2026-03-05 10:00"), outcome="fulfilled")

    assert tick(database, settings, at("2026-03-09 08:59"))["monday_nudge"] == 0
    assert tick(database, settings, at("2026-03-09 09:00"))["monday_nudge"] == 2
    assert tick(database, settings, at("2026-03-09 15:00"))["monday_nudge"] == 0
    assert tick(database, settings, at("2026-03-11 09:00"))["monday_nudge"] == 0
    nudges = [t for t in texts(database, MEMBER, "reminder") if t.startswith(messages.NUDGE_HEADER.format(n=2))]
    assert len(nudges) == 1
    lines = nudges[0].split("\n")
    assert lines[1].startswith(f"{b}号") and lines[2].startswith(f"{a}号")  # soonest due first
    m2_nudges = [t for t in texts(database, MEMBER2, "reminder") if t.startswith(messages.NUDGE_HEADER.format(n=1))]
    assert len(m2_nudges) == 1 and f"{c}号" in m2_nudges[0] and f"{done}号" not in m2_nudges[0]
    assert outbox_rows(database, recipient="o_member_idle") == []

    assert tick(database, settings, at("2026-03-16 09:00"))["monday_nudge"] == 2  # the next week again


# -- the hall -------------------------------------------------------------------------------

def test_unclaimed_wish_is_posted_again_after_three_days_once_with_masked_text(database: Database, settings: Settings) -> None:
    add_person(database, ADMIN, role="admin")
    resident = add_person(database, RESIDENT)
    wid = add_wish(database, resident, status="published", published=at("2026-03-02 10:00"),
                   text="想请人帮忙修一下家里的水龙头，电话13812345678",
                   masked="想请人帮忙修一下家里的水龙头，电话[电话]")
    assert tick(database, settings, at("2026-03-05 09:59"))["reposts"] == 0
    assert tick(database, settings, at("2026-03-05 10:00"))["reposts"] == 1
    assert tick(database, settings, at("2026-03-09 10:00"))["reposts"] == 0
    [post] = outbox_rows(database, channel="claim_webhook")
    assert "[电话]" in post.payload["content"] and "13812345678" not in post.payload["content"]
    assert messages.REPOST_WAITED.format(days=3) in post.payload["content"]
    assert len(outbox_rows(database, channel="admin_webhook", kind="alert")) == 1
    assert wish_row(database, wid).reposted_at == at("2026-03-05 10:00")
    assert events_of(database, wid).count("repost") == 1


# -- catch-up and concurrency ----------------------------------------------------------------

def test_catch_up_after_downtime_sends_each_due_item_once(database: Database, settings: Settings) -> None:
    add_person(database, ADMIN, role="admin")
    member = add_person(database, MEMBER, role="member")
    fulfilled_wish(database, at("2026-03-02 10:00"))
    fulfilled_wish(database, at("2026-03-03 22:30"), openid=RESIDENT2)
    claimed_wish(database, member, claimed=at("2026-03-02 10:00"), due=at("2026-03-06 10:00"))
    add_wish(database, add_person(database, None), status="published", published=at("2026-03-02 11:00"))

    first = tick(database, settings, at("2026-03-23 10:00"))  # down for three weeks
    assert first["return_visit_prompts"] == 2
    assert first["claims_overdue"] == 1 and first["claims_due_soon"] == 0
    assert first["reposts"] == 1 and first["monday_nudge"] == 1
    assert first["digests"] == 3  # last week, the ten-day period 11th–20th, and February
    before = len(outbox_rows(database))
    second = tick(database, settings, at("2026-03-23 10:05"))
    assert all(n == 0 for n in second.values()), second
    assert len(outbox_rows(database)) == before


def test_two_processes_running_the_sweeps_at_once_prompt_each_wish_once(db_url: str, settings: Settings) -> None:
    seeder = Database(db_url)
    wishes = [fulfilled_wish(seeder, at("2026-03-02 10:00"), openid=f"o_resident_many_{i:03d}") for i in range(24)]
    seeder.close()
    a, b = Database(db_url), Database(db_url)
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(2)

    def run(db: Database) -> None:
        barrier.wait()
        results.append(tick(db, settings, at("2026-03-05 10:00")))

    try:
        threads = [threading.Thread(target=run, args=(db,)) for db in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sum(r["return_visit_prompts"] for r in results) == len(wishes)
        rows = outbox_rows(a, kind="return_visit")
        assert sorted(r.payload["template"]["code"] for r in rows) == sorted(str(w) for w in wishes)
    finally:
        a.close()
        b.close()


def test_quiet_hours_also_hold_back_a_late_catch_up(database: Database, settings: Settings) -> None:
    fulfilled_wish(database, at("2026-03-02 10:00"))
    assert tick(database, settings, at("2026-03-05 23:30"))["return_visit_prompts"] == 0
    assert tick(database, settings, at("2026-03-06 08:00"))["return_visit_prompts"] == 1
    assert fmt_datetime(at("2026-03-06 08:00"), settings) == "3月6日 08:00"


async def test_scheduler_in_serve_catches_up_at_start(aiohttp_client: Any, database: Database, settings: Settings) -> None:
    """The app's scheduler runs the sweeps once at start (catch-up), as of the app's clock."""
    from bot.app import create_app
    from bot.clock import FrozenClock

    wid = fulfilled_wish(database, at("2026-03-02 10:00"))
    app = create_app(settings, clock=FrozenClock(at("2026-03-05 10:00")), database=database, background=True)
    await aiohttp_client(app)
    for _ in range(200):  # the first run is immediate; give the worker thread up to 10 s
        if wish_row(database, wid).return_visit_prompted_at is not None:
            break
        await asyncio.sleep(0.05)
    assert wish_row(database, wid).return_visit_prompted_at == at("2026-03-05 10:00")
    assert len(outbox_rows(database, recipient=RESIDENT, kind="return_visit")) == 1


def test_reopened_and_fulfilled_again_starts_a_new_round_of_return_visits(database: Database, settings: Settings) -> None:
    wid = fulfilled_wish(database, at("2026-03-02 10:00"))
    tick(database, settings, at("2026-03-05 10:00"))
    tick(database, settings, at("2026-03-07 10:00"))  # reminder
    tick(database, settings, at("2026-03-12 10:00"))  # on the phone-visit list
    assert wish_row(database, wid).phone_visit_since == at("2026-03-12 10:00")

    def refulfil(uow: Any) -> None:  # as reopen + fulfil would leave it
        wish = uow.wishes.get(wid)
        wish.fulfilled_at = at("2026-03-13 10:00")
    database.run_sync(refulfil, at("2026-03-13 10:00"))
    shown = database.run_sync(lambda uow: stats.stats_text(uow, settings), at("2026-03-13 11:00"), write=False)
    assert messages.STATS_PHONE_VISITS.format(n=1, codes=str(wid)) not in shown
    assert tick(database, settings, at("2026-03-16 09:59"))["return_visit_prompts"] == 0
    assert tick(database, settings, at("2026-03-16 10:00"))["return_visit_prompts"] == 1
    assert len(texts(database, RESIDENT, "return_visit")) == 3  # prompt, reminder, and the new prompt
