"""Issue 9: safe home visits (the safety code, who is coming) and wishes concerning a minor.

Through the HTTP gateway on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest

from bot import messages
from bot.clock import FrozenClock
from bot.config import Settings
from storage.db import Database
from storage.models import Claim, Outbox, Wish
from tests.admin_support import FAST_HASHER, ROOT, ROOT_PW, login
from tests.integration.member_helpers import (bind_members, channel_posts, outbox_texts, place_member, publish, rows,
                                              submit_and_publish)
from tests.support import ADMIN, RESIDENT, RESIDENT2, ChatClient

TAP = "想请人帮忙修一下家里的水龙头"
CHILD = "想给上三年级的孩子小明找个辅导数学的志愿者"


def wish(database: Database, wish_id: int) -> Wish:
    return rows(database, Wish, Wish.id == wish_id)[0]


def all_texts(database: Database) -> list[tuple[str | None, str]]:
    out = []
    for r in rows(database, Outbox):
        out.append((r.recipient, r.payload.get("text") or r.payload.get("content") or ""))
    return out


async def test_the_safety_code_reaches_only_the_resident_and_the_claimer(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    member, other = await bind_members(bot, database, clock, settings, 2)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    await bot.send_text(RESIDENT2, "许愿 想请人陪我去医院复查")

    await bot.send_text(member, f"认领 {wish_id}")
    [claim] = rows(database, Claim)
    code = claim.safety_code
    assert code is not None and re.fullmatch(r"\d{4}", code)
    tail_resident = messages.NOTICE_SAFETY_TAIL.format(safety_code=code)
    tail_member = messages.CLAIM_SAFETY_TAIL.format(safety_code=code)
    # the resident learns who is coming, from which branch, and the code, before the visit
    [notice] = [t for t in outbox_texts(database, RESIDENT) if t.endswith(tail_resident)]
    assert "第一支部的党员1" in notice
    assert any(t.endswith(tail_member) for t in outbox_texts(database, member))
    marker = messages.NOTICE_SAFETY_TAIL.split("{")[0].strip()
    for recipient, text in all_texts(database):
        if recipient not in (RESIDENT, member):
            assert marker not in text and "安全码" not in text, (recipient, text)
    for post in channel_posts(database):
        assert "安全码" not in post and code not in post

    assert messages.TRACK_SAFETY.format(safety_code=code) in (await bot.send_text(RESIDENT, f"进度 {wish_id}") or "")
    assert messages.MY_CLAIMS_SAFETY.format(safety_code=code) in (await bot.send_text(member, "我的认领") or "")
    assert "安全码" not in (await bot.send_text(ADMIN, f"进度 {wish_id}") or "")
    assert await bot.send_text(RESIDENT2, f"进度 {wish_id}") == messages.TRACK_NOT_YOURS.format(code=wish_id)
    assert "安全码" not in (await bot.send_text(other, "我的认领") or "")
    logged = capsys.readouterr()
    assert "safety" not in logged.out + logged.err and f"={code}" not in logged.out + logged.err

    from bot.auth import create_admin_user
    database.run_sync(lambda uow: create_admin_user(uow, username=ROOT, password=ROOT_PW, hasher=FAST_HASHER), clock.now())
    await login(bot.client, ROOT, ROOT_PW)
    for page in ("/admin", "/admin/wishes", f"/admin/wishes/{wish_id}", "/admin/members"):
        resp = await bot.client.get(page)
        assert resp.status == 200 and "安全码" not in await resp.text(), page

    # done: the code is no longer shown to the resident
    await bot.send_text(member, f"完成 {wish_id} 修好了")
    assert "安全码" not in (await bot.send_text(RESIDENT, f"进度 {wish_id}") or "")


async def test_each_claim_gets_its_own_code(bot: ChatClient, database: Database, clock: FrozenClock,
                                           settings: Settings) -> None:
    members = await bind_members(bot, database, clock, settings, 3)
    for i, member in enumerate(members):
        wish_id = await submit_and_publish(bot, database, clock, settings, f"想请人帮忙修第{i}个水龙头",
                                           resident=f"o_resident_s{i:018d}")
        await bot.send_text(member, f"认领 {wish_id}")
    codes = [c.safety_code for c in rows(database, Claim)]
    assert all(c and re.fullmatch(r"\d{4}", c) for c in codes)


async def _wish_in_dialogue(bot: ChatClient, text: str, minor_answer: str = "是") -> None:
    assert await bot.send_text(RESIDENT, "许愿") == messages.DLG_ASK_CONTENT
    assert await bot.send_text(RESIDENT, text) == messages.DLG_ASK_MINOR
    assert (await bot.send_text(RESIDENT, minor_answer) or "").startswith("您的心愿属于")
    assert await bot.send_text(RESIDENT, "确认") == messages.DLG_ASK_PHONE
    assert await bot.send_text(RESIDENT, "跳过") == messages.DLG_ASK_COMMUNITY
    receipt = await bot.send_text(RESIDENT, "跳过") or ""
    assert receipt.startswith("心愿已收到")
    assert (messages.WISH_OK_WALL.format(code=1) in receipt) is (minor_answer != "是")  # a minor's wish: no wall


async def test_a_minors_wish_is_published_only_after_the_guardians_consent(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    place_member(database, clock, member, skills="助学")
    await _wish_in_dialogue(bot, CHILD)
    w = wish(database, 1)
    assert (w.concerns_minor, w.public, w.masked) == (True, False, messages.MINOR_MASKED)

    assert await bot.send_text(ADMIN, "通过 1") == messages.APPROVE_HELD_MINOR.format(code=1)
    assert wish(database, 1).status == "submitted"
    assert channel_posts(database) == [] and outbox_texts(database, member) == []
    assert messages.NOTICE_CONSENT_NEEDED.format(code=1) in outbox_texts(database, RESIDENT)
    assert (await bot.send_text(member, f"认领 1") or "") == messages.CLAIM_NOT_PERSONAL.format(code=1)

    assert await bot.send_text(RESIDENT2, "监护人同意 1") == messages.NOT_YOUR_WISH.format(
        code=1, action=messages.CONSENT_ACTION)
    assert await bot.send_text(RESIDENT, "监护人同意") == messages.CONSENT_PUBLISHED.format(code=1)
    w = wish(database, 1)
    assert w.status == "published" and w.guardian_consent_at == clock.now()
    [post] = channel_posts(database)
    assert messages.MINOR_MASKED in post and "小明" not in post and "三年级" not in post
    [recommendation] = outbox_texts(database, member)
    assert messages.MINOR_MASKED in recommendation and "小明" not in recommendation
    hall = await bot.send_text(member, "大厅") or ""
    assert "小明" not in hall and messages.MINOR_MASKED[:10] in hall
    assert await bot.send_text(RESIDENT, "监护人同意") == messages.CONSENT_NOTHING

    # the claimer alone gets the child's details, privately
    await bot.send_text(member, "认领 1")
    assert any("小明" in t for t in outbox_texts(database, member))
    assert all("小明" not in p for p in channel_posts(database))


async def test_an_admin_marks_a_minor_and_records_the_consent(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    await bot.send_text(RESIDENT, f"许愿 {CHILD}")
    assert wish(database, 1).concerns_minor is False
    assert await bot.send_text(RESIDENT, "监护人同意 1") == messages.CONSENT_NOT_MINOR.format(code=1)
    assert await bot.send_text(ADMIN, "通过 1 个性 未成年") == messages.APPROVE_HELD_MINOR.format(code=1)
    w = wish(database, 1)
    assert (w.status, w.concerns_minor, w.public, w.masked) == ("submitted", True, False, messages.MINOR_MASKED)
    assert channel_posts(database) == []
    assert await bot.send_text(ADMIN, "/consent 1") == messages.CONSENT_PUBLISHED.format(code=1)
    assert wish(database, 1).status == "published"
    assert messages.NOTICE_APPROVED.format(code=1) in outbox_texts(database, RESIDENT)
    assert await bot.send_text(ADMIN, "监护人同意 1") == messages.CONSENT_ALREADY.format(code=1)
    [post] = channel_posts(database)
    assert "小明" not in post


async def test_consent_given_before_registration_publishes_at_once(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    await _wish_in_dialogue(bot, CHILD)
    assert await bot.send_text(RESIDENT, "监护人同意") == messages.CONSENT_RECORDED.format(code=1)
    assert wish(database, 1).status == "submitted"
    assert await bot.send_text(ADMIN, "通过 1") == messages.APPROVE_OK.format(code=1, tier="个性")
    assert wish(database, 1).status == "published"
    assert all("小明" not in p for p in channel_posts(database))


async def test_no_child_answer_publishes_as_usual(bot: ChatClient, database: Database, clock: FrozenClock,
                                                 settings: Settings) -> None:
    await _wish_in_dialogue(bot, "想请人帮孩子修一下自行车", minor_answer="否")
    w = wish(database, 1)
    assert (w.concerns_minor, w.public) == (False, True)
    publish(database, clock, settings, 1)
    assert wish(database, 1).status == "published"
