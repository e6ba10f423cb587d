"""The 许愿 dialogue: content → (minor? when it mentions a child) → category → phone (optional) → community.

Progress lives in the person's `DialogueState` row (flow "wish"), never in wish status; each
answer pushes the expiry `settings.dialogue_timeout_minutes` further. The same flow holds the
"this looks like your wish N, submit anyway?" question (step "similar") of the one-shot 许愿.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Callable

from bot import messages, privacy
from bot.categories import is_category, suggest_category
from bot.config import Settings
from bot.inbound import Inbound
from bot.routing import DomainError, parse_command
from bot.services.wishes import WishDraft, check_content, check_limits, similar_open_wish, submit_wish
from storage.db import UnitOfWork
from storage.models import Person

FLOW = "wish"
CONTENT, MINOR, CATEGORY, PHONE, COMMUNITY, SIMILAR = "content", "minor", "category", "phone", "community", "similar"


def _categories() -> str:
    return messages.DLG_CATEGORY_SEPARATOR.join(messages.CATEGORIES)


def _save(uow: UnitOfWork, person: Person, step: str, data: dict[str, Any], settings: Settings) -> None:
    expires = uow.now + timedelta(minutes=settings.dialogue_timeout_minutes)
    uow.dialogues.start(person.id or 0, flow=FLOW, step=step, data=data, expires_at=expires)


def submitted_reply(code: int | None, minor: bool = False) -> str:
    """The receipt; a wish concerning a minor never goes on the wall, so it says nothing about it."""
    return messages.WISH_OK.format(code=code) + ("" if minor else messages.WISH_OK_WALL.format(code=code))


def start_wish_dialogue(uow: UnitOfWork, *, resident: Person, settings: Settings) -> str:
    """`许愿` alone: ask what the wish is (limits are checked first, so nobody types in vain)."""
    check_limits(uow, resident, settings)
    _save(uow, resident, CONTENT, {"draft": asdict(WishDraft(content="", source="dialogue"))}, settings)
    return messages.DLG_ASK_CONTENT


def submit_or_confirm(uow: UnitOfWork, *, resident: Person, draft: WishDraft, settings: Settings) -> str:
    """Submit the wish, unless it nearly repeats one of the resident's open wishes: then ask first."""
    draft.content = check_content(draft.content, settings)
    check_limits(uow, resident, settings)
    twin = similar_open_wish(uow, resident=resident, content=draft.content, settings=settings)
    if twin is not None:
        _save(uow, resident, SIMILAR, {"draft": asdict(draft), "similar": twin.id}, settings)
        return messages.WISH_SIMILAR.format(code=twin.id, text=twin.content)
    uow.dialogues.clear(resident.id or 0)
    wish = submit_wish(uow, resident=resident, draft=draft, settings=settings, limits_checked=True)
    return submitted_reply(wish.id, wish.concerns_minor)


def community_from_label(label: str) -> str | None:
    """The community's name in a location label ("…街道幸福社区…" → "幸福社区"), if it names one."""
    end = label.find(messages.COMMUNITY_SUFFIX)
    if end <= 0:
        return None
    start = end
    while start > 0 and end - start < 10 and label[start - 1] not in messages.COMMUNITY_STOP_CHARS \
            and not label[start - 1].isdigit() and not label[start - 1].isspace():
        start -= 1
    name = label[start:end] + messages.COMMUNITY_SUFFIX
    return name if start < end else None


def continue_wish_dialogue(uow: UnitOfWork, *, resident: Person, msg: Inbound, settings: Settings) -> str:
    """One answer in the dialogue; returns the next question (or the submission's reply)."""
    state = uow.dialogues.active(resident.id or 0, uow.now)
    if state is None:
        return messages.DLG_EXPIRED
    on_step = STEPS.get(state.step)
    if on_step is None:  # a step this version does not know (left over from an older release)
        uow.dialogues.clear(resident.id or 0)
        return messages.DLG_EXPIRED
    text = (msg.content if msg.msg_type == "text" else msg.recognition).strip()
    data = dict(state.data)
    draft = WishDraft(**data["draft"])
    if text in messages.LEAVE_WORDS:
        uow.dialogues.clear(resident.id or 0)
        return messages.WISH_DUP_CANCELLED if state.step == SIMILAR else messages.DLG_LEFT
    try:
        return on_step(_Turn(uow, resident, msg, text, draft, data, settings))
    except DomainError as refusal:  # limits reached meanwhile: the dialogue cannot end in a wish
        uow.dialogues.clear(resident.id or 0)
        return refusal.reply


@dataclass
class _Turn:
    """One answer in the dialogue, with what the dialogue holds so far."""

    uow: UnitOfWork
    resident: Person
    msg: Inbound
    text: str
    draft: WishDraft
    data: dict[str, Any]
    settings: Settings

    def again(self, step: str, question: str) -> str:
        """Stay on this step (its expiry pushed on) and ask again."""
        _save(self.uow, self.resident, step, self.data, self.settings)
        return question

    def next(self, step: str, question: str) -> str:
        _save(self.uow, self.resident, step, {"draft": asdict(self.draft)}, self.settings)
        return question

    def ask_category(self) -> str:
        return self.next(CATEGORY, messages.DLG_ASK_CATEGORY.format(category=self.draft.category, categories=_categories()))


def _on_similar(t: _Turn) -> str:
    if t.text not in messages.CONFIRM_WORDS:
        return t.again(SIMILAR, messages.WISH_SIMILAR_AGAIN)
    t.uow.dialogues.clear(t.resident.id or 0)
    wish = submit_wish(t.uow, resident=t.resident, draft=t.draft, settings=t.settings)
    return submitted_reply(wish.id, wish.concerns_minor)


def _on_content(t: _Turn) -> str:
    if t.msg.msg_type == "voice":  # issue 9: keep the voice; its text when WeChat recognised it
        t.draft.source, t.draft.voice_media_id = "voice", t.msg.media_id or None
        if len(t.text) < t.settings.wish_min_chars:
            t.text = messages.VOICE_PLACEHOLDER
    keyword, rest = parse_command(t.text)
    try:
        t.draft.content = check_content(rest if keyword == messages.Keyword.WISH else t.text, t.settings)
    except DomainError as refusal:
        return t.again(CONTENT, refusal.reply)
    t.draft.category = suggest_category(privacy.split_private(t.draft.content).text)
    if any(word in t.draft.content for word in messages.MINOR_HINT_WORDS):  # interface: Minors
        return t.next(MINOR, messages.DLG_ASK_MINOR)
    return t.ask_category()


def _on_minor(t: _Turn) -> str:
    if t.text not in messages.CONFIRM_WORDS and t.text not in messages.NO_WORDS:
        return t.again(MINOR, messages.DLG_ASK_MINOR)
    t.draft.concerns_minor = t.text in messages.CONFIRM_WORDS
    return t.ask_category()


def _on_category(t: _Turn) -> str:
    if t.text not in messages.CONFIRM_WORDS:
        if not is_category(t.text):
            return t.again(CATEGORY, messages.DLG_BAD_CATEGORY.format(categories=_categories()))
        t.draft.category = t.text
    return t.next(PHONE, messages.DLG_ASK_PHONE)


def _on_phone(t: _Turn) -> str:
    if t.text not in messages.SKIP_WORDS:
        phone = privacy.normalize_phone(t.text)
        if phone is None:
            return t.again(PHONE, messages.DLG_BAD_PHONE)
        t.draft.phone = phone
    return t.next(COMMUNITY, messages.DLG_ASK_COMMUNITY)


def _on_community(t: _Turn) -> str:
    """A location message or a typed name (or 跳过), then the wish is submitted."""
    if t.msg.msg_type == "location":
        t.draft.location_label = t.msg.label or None
        t.draft.community = community_from_label(t.msg.label or "")
    elif t.text and t.text not in messages.SKIP_WORDS:
        t.draft.community = t.text[:30]
    return submit_or_confirm(t.uow, resident=t.resident, draft=t.draft, settings=t.settings)


STEPS: dict[str, Callable[[_Turn], str]] = {
    SIMILAR: _on_similar, CONTENT: _on_content, MINOR: _on_minor, CATEGORY: _on_category, PHONE: _on_phone,
    COMMUNITY: _on_community,
}
