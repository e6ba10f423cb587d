"""The digest on a seeded data set: every figure is worked out here from the seed list itself."""

from __future__ import annotations

import base64
import hashlib
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from bot import messages
from bot.config import Settings
from bot.services import digest
from bot.services.sweeps import run_due_sweeps
from storage.db import Database
from tests.conftest import make_settings
from tests.integration.schedule_seed import add_claim, add_event, add_person, add_wish, at, outbox_rows
from tests.support import ADMIN

START, END = at("2026-02-23 00:00"), at("2026-03-02 00:00")  # the week before Monday 2 March
NOW = at("2026-03-02 10:00")
SLA_HOURS = 72
MIN_ITEMS = 3


@dataclass
class Seed:
    community: str | None
    created: str
    status: str
    published: str | None = None
    claimed: str | None = None
    member: str | None = None
    fulfilled: str | None = None
    rated: str | None = None
    rating: int | None = None
    due: str | None = None
    extra: tuple[tuple[str, str, str], ...] = ()  # (action, time, to_status)
    phone_visit: str | None = None


MEMBERS = {"m1": "第一支部", "m2": "第一支部", "m3": "第二支部", "m4": "第二支部", "m5": None}
SEEDS = [
    Seed("东风社区", "2026-02-22 20:00", "rated", "2026-02-23 09:00", "2026-02-23 15:00", "m1", "2026-02-25 10:00",
         "2026-02-26 10:00", 5),
    Seed("东风社区", "2026-02-23 10:00", "rated", "2026-02-24 09:00", "2026-02-28 10:00", "m1", "2026-03-01 10:00",
         "2026-03-01 20:00", 3),
    Seed("东风社区", "2026-02-24 10:00", "claimed", "2026-02-24 12:00", "2026-02-25 12:00", "m3", due="2026-02-27 10:00"),
    Seed("东风社区", "2026-02-26 09:00", "published", "2026-02-26 10:00"),
    Seed("西湖社区", "2026-02-25 08:00", "fulfilled", "2026-02-25 09:00", "2026-02-25 10:00", "m2", "2026-02-27 10:00",
         phone_visit="2026-03-01 10:00"),
    Seed("西湖社区", "2026-02-25 09:00", "rated", "2026-02-25 10:00", "2026-02-26 10:00", "m3", "2026-02-28 10:00",
         "2026-03-03 10:00", 5),  # rated after the period: not in this digest's satisfaction
    Seed("西湖社区", "2026-02-27 09:00", "fulfilled", "2026-02-27 10:00", "2026-03-01 22:00", "m2", "2026-03-02 08:00"),
    Seed("南山社区", "2026-02-28 09:00", "rated", "2026-02-28 10:00", "2026-02-28 12:00", "m1", "2026-02-28 18:00",
         "2026-02-28 20:00", 2),
    Seed("东风社区", "2026-02-10 10:00", "closed", "2026-02-15 10:00", "2026-02-23 10:00", "m3", "2026-02-24 10:00",
         extra=(("close", "2026-02-26 10:00", "closed"),)),
    Seed(None, "2026-02-27 10:00", "submitted"),
    Seed(None, "2026-02-20 10:00", "deferred", extra=(("defer", "2026-02-26 10:00", "deferred"),)),
    Seed("南山社区", "2026-02-24 10:00", "assigned", extra=(("assign", "2026-02-25 10:00", "assigned"),)),
    Seed("东风社区", "2026-03-02 08:00", "published", "2026-03-02 09:00"),  # after the period
]


def t(text: str | None) -> datetime | None:
    return at(text) if text else None


def inside(text: str | None) -> bool:
    return text is not None and START <= at(text) < END


def before_end(text: str | None) -> bool:
    return text is not None and at(text) < END


def hours(a: str, b: str) -> float:
    return (at(b) - at(a)).total_seconds() / 3600


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, claim_sla_hours=SLA_HOURS, ranking_min_items=MIN_ITEMS,
                         admin_webhook="http://127.0.0.1:9/cgi-bin/webhook/send?key=admins")


@pytest.fixture
def seeded(database: Database) -> dict[int, Seed]:
    add_person(database, ADMIN, role="admin")
    people = {code: add_person(database, f"o_{code}", role="member", name=f"党员{code}", branch=branch)
              for code, branch in MEMBERS.items()}
    resident = add_person(database, "o_resident_digest")
    ids: dict[int, Seed] = {}
    for s in SEEDS:
        member = people[s.member] if s.member else None
        wid = add_wish(database, resident, status=s.status, created=at(s.created), published=t(s.published),
                       claimed=t(s.claimed), fulfilled=t(s.fulfilled), rated=t(s.rated), rating=s.rating,
                       community=s.community, member_id=member, phone_visit_since=t(s.phone_visit))
        for action, when, to in s.extra:
            add_event(database, wid, action, at(when), to)
        if s.claimed and member:
            ended = t(s.fulfilled)
            add_claim(database, wid, member, claimed=at(s.claimed),
                      due=t(s.due) or at(s.claimed) + timedelta(days=7), ended=ended,
                      outcome="fulfilled" if ended else None, branch=MEMBERS[s.member or ""])
        ids[wid] = s
    return ids


def build(database: Database, settings: Settings) -> digest.Digest:
    period = digest.last_complete_period("week", NOW, settings)
    return database.run_sync(lambda uow: digest.build_digest(uow, settings, period), NOW, write=False)


def test_digest_counts_rates_medians_and_rankings_match_the_seed(database: Database, settings: Settings,
                                                                  seeded: dict[int, Seed]) -> None:
    d = build(database, settings)
    assert (d.period.start, d.period.end) == (START, END)

    extra = [(action, when) for s in SEEDS for action, when, _ in s.extra]
    expected_counts = {
        "new": sum(inside(s.created) for s in SEEDS),
        "published": sum(inside(s.published) for s in SEEDS),
        "claimed": sum(inside(s.claimed) for s in SEEDS),
        "fulfilled": sum(inside(s.fulfilled) for s in SEEDS),
        "closed": sum(a == "close" and inside(w) for a, w in extra),
        "deferred": sum(a == "defer" and inside(w) for a, w in extra),
        "assigned": sum(a == "assign" and inside(w) for a, w in extra),
    }
    assert d.counts == expected_counts
    assert expected_counts == {"new": 9, "published": 8, "claimed": 8, "fulfilled": 6, "closed": 1, "deferred": 1,
                               "assigned": 1}

    cohort = [s for s in SEEDS if inside(s.published)]
    claimed = [s for s in cohort if before_end(s.claimed)]
    fulfilled = [s for s in claimed if before_end(s.fulfilled)]
    rated = [s for s in cohort if before_end(s.rated) and s.rating is not None]
    response = (sum(hours(s.published, s.claimed) <= SLA_HOURS for s in claimed), len(cohort))  # type: ignore[arg-type]
    expected_rates = {"response": response, "resolution": (len(fulfilled), len(claimed)),
                      "satisfaction": (sum((s.rating or 0) >= 4 for s in rated), len(rated))}
    assert d.rates == expected_rates
    assert expected_rates == {"response": (6, 8), "resolution": (5, 7), "satisfaction": (1, 3)}

    assert d.median_claim_hours == pytest.approx(statistics.median(hours(s.published, s.claimed) for s in claimed))  # type: ignore[arg-type]
    assert d.median_fulfil_hours == pytest.approx(statistics.median(hours(s.claimed, s.fulfilled) for s in fulfilled))  # type: ignore[arg-type]
    assert (d.median_claim_hours, d.median_fulfil_hours) == (24, 43)

    # branches: claims made in the period, fulfilled by the period's end
    branch_tally: dict[str, list[int]] = {}
    for s in SEEDS:
        if inside(s.claimed) and s.member and MEMBERS[s.member]:
            row = branch_tally.setdefault(MEMBERS[s.member] or "", [0, 0])
            row[1] += 1
            row[0] += before_end(s.fulfilled)
    community_tally: dict[str, list[int]] = {}
    for s in cohort:
        row = community_tally.setdefault(s.community or "", [0, 0])
        row[1] += 1
        row[0] += before_end(s.fulfilled)

    def ranking(tally: dict[str, list[int]]) -> list[tuple[str, int, int]]:
        kept = [(name, n, m) for name, (n, m) in tally.items() if m >= MIN_ITEMS]
        return sorted(kept, key=lambda r: r[1] / r[2], reverse=True)

    assert [(r.name, r.num, r.den) for r in d.branches] == ranking(branch_tally) == [("第一支部", 4, 5), ("第二支部", 2, 3)]
    assert [(r.name, r.num, r.den) for r in d.communities] == ranking(community_tally) == [("西湖社区", 2, 3), ("东风社区", 2, 4)]

    assert sorted(d.idle_members) == ["党员m4", "党员m5"]
    wid_of = {id(s): wid for wid, s in seeded.items()}
    overdue_wid = wid_of[id(SEEDS[2])]
    assert len(d.overdue) == 1 and d.overdue[0].startswith(f"{overdue_wid}号 党员m3")
    phone_wid = wid_of[id(SEEDS[4])]
    assert len(d.phone_visits) == 1 and d.phone_visits[0].startswith(f"{phone_wid}号")


def test_digest_text_states_each_rate_with_numerator_denominator_and_definition(database: Database, settings: Settings,
                                                                               seeded: dict[int, Seed]) -> None:
    text = digest.render_digest(build(database, settings), settings)
    assert messages.DIGEST_RATE_LINE.format(name="响应率", pct="75%", num=6, den=8) in text
    assert messages.DIGEST_RATE_LINE.format(name="解决率", pct="71%", num=5, den=7) in text
    assert messages.DIGEST_RATE_LINE.format(name="满意率", pct="33%", num=1, den=3) in text
    assert messages.DIGEST_RATE_DEFINITIONS.format(sla=SLA_HOURS) in text
    assert messages.DIGEST_MEDIANS.format(claim="24小时", fulfil="43小时") in text
    assert messages.DIGEST_RANK_LINE.format(rank=1, name="第一支部", pct="80%", num=4, den=5) in text
    assert messages.DIGEST_RANK_LINE.format(rank=2, name="东风社区", pct="50%", num=2, den=4) in text
    assert "南山社区" not in text  # below ranking_min_items
    assert messages.DIGEST_TITLE.format(name="周报", start="2月23日", end="3月1日") in text


def test_weekly_digest_is_queued_once_at_monday_nine_with_chart_and_admin_template(database: Database, settings: Settings,
                                                                                   seeded: dict[int, Seed]) -> None:
    def digests_queued(when: datetime) -> int:
        [outcome] = [o for o in run_due_sweeps(database, settings, when) if o.sweep.name == "digests"]
        return outcome.count

    assert digests_queued(at("2026-03-02 08:59")) == 2  # February's month and ten-day digests, due since 1 March 09:00
    assert digests_queued(at("2026-03-02 09:00")) == 1  # the week
    assert digests_queued(at("2026-03-02 09:30")) == 0
    rows = [r for r in outbox_rows(database, channel="admin_webhook", kind="digest")]
    markdown = [r for r in rows if r.payload["msgtype"] == "markdown"]
    images = [r for r in rows if r.payload["msgtype"] == "image"]
    assert len(images) == 3 and len(markdown) >= 3
    assert all(len(r.payload["content"].encode()) <= 4096 for r in markdown)
    for img in images:
        png = base64.b64decode(img.payload["base64"])
        assert png.startswith(b"\x89PNG") and hashlib.md5(png).hexdigest() == img.payload["md5"]
        assert len(png) < 100_000
    admin_rows = outbox_rows(database, recipient=ADMIN, kind="digest")
    assert len(admin_rows) == 3
    week = [r for r in admin_rows if r.payload["template"]["period"].startswith("周报")]
    assert week[0].payload["template"] == {"period": "周报 02.23—03.01", "count": "9"}
    assert len(week[0].payload["text"].encode()) <= 2048
