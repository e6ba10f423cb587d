"""For residents who cannot type (issue 9): voice wishes, proxy filing (代办) and taking a wish over (关联).

- A voice message is a wish: its MediaId is kept and WeChat's recognition text is the content when
  there is one; otherwise a placeholder waits for an admin to listen and transcribe (dashboard).
- `代办`: an admin files a wish for a resident without WeChat (a Person with no openid), recording
  how consent was given. The dialogue lives in the admin's `DialogueState` (flow "proxy").
- `关联 <编号> <手机号后四位>`: the resident, once following the account, takes the wish over; wrong
  digits say nothing about the wish and are counted, then `关联` locks for a while.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import select, update

from bot import messages, privacy
from bot.categories import suggest_category
from bot.config import Settings
from bot.inbound import Inbound
from bot.lifecycle import Role, WishStatus
from bot.routing import DomainError, Refused
from bot.services.wishes import WishDraft, check_content, submit_wish
from storage.db import UnitOfWork
from storage.models import Person, Wish

FLOW = "proxy"
NAME, PHONE, COMMUNITY, CONSENT, CONTENT = "name", "phone", "community", "consent", "content"
SOURCE_VOICE, SOURCE_PROXY = "voice", "proxy"
LINK_DIGITS = 4


# -- voice ----------------------------------------------------------------------------------------

def file_voice_wish(uow: UnitOfWork, *, resident: Person, media_id: str, recognition: str,
                    settings: Settings) -> tuple[Wish, bool]:
    """Store a voice wish; (wish, True) when WeChat's recognition text became its content."""
    heard = " ".join(recognition.split())
    usable = len(heard) >= settings.wish_min_chars
    draft = WishDraft(content=heard[: settings.wish_max_chars] if usable else messages.VOICE_PLACEHOLDER,
                      source=SOURCE_VOICE, voice_media_id=media_id[:128] or None)
    return submit_wish(uow, resident=resident, draft=draft, settings=settings), usable


def voice_reply(wish: Wish, heard: bool) -> str:
    reply = messages.VOICE_OK.format(code=wish.id, text=wish.content) if heard else messages.VOICE_OK_PENDING.format(code=wish.id)
    return reply + ("" if wish.concerns_minor else messages.WISH_OK_WALL.format(code=wish.id))


def awaits_transcription(wish: Wish) -> bool:
    return bool(wish.voice_media_id) and wish.content == messages.VOICE_PLACEHOLDER


def transcribe_wish(uow: UnitOfWork, *, wish_id: int, admin: Person, text: str, settings: Settings) -> Wish:
    """An admin writes down what the voice says, while the wish waits for registration."""
    wish = uow.wishes.get(wish_id)
    if not wish.voice_media_id:
        raise Refused(messages.TRANSCRIBE_NOT_VOICE.format(code=wish.id))
    if wish.status != WishStatus.SUBMITTED.value:
        raise Refused(messages.TRANSCRIBE_TOO_LATE.format(code=wish.id))
    split = privacy.split_private(check_content(text, settings))
    wish.content, wish.masked = split.text, privacy.mask(split.text)
    wish.private_details = {**wish.private_details, **split.details}
    wish.category = suggest_category(split.text)
    if wish.contact_phone is None and split.phones:
        wish.contact_phone = split.phones[0]
    uow.wishes.note(wish, action="transcribe", actor=admin, actor_role=admin.role, now=uow.now)
    return wish


# -- 代办: the proxy dialogue ----------------------------------------------------------------------

def _save(uow: UnitOfWork, admin: Person, step: str, data: dict[str, Any], settings: Settings) -> None:
    uow.dialogues.start(admin.id or 0, flow=FLOW, step=step, data=data,
                        expires_at=uow.now + timedelta(minutes=settings.dialogue_timeout_minutes))


def start_proxy(uow: UnitOfWork, *, admin: Person, settings: Settings) -> str:
    """`代办`: ask the resident's name first."""
    _save(uow, admin, NAME, {}, settings)
    return messages.PROXY_ASK_NAME


@dataclass
class _Turn:
    uow: UnitOfWork
    admin: Person
    text: str
    data: dict[str, Any]
    settings: Settings

    def ask(self, step: str, question: str) -> str:
        _save(self.uow, self.admin, step, self.data, self.settings)
        return question


def _on_name(t: _Turn) -> str:
    if not 1 <= len(t.text) <= 20:
        return t.ask(NAME, messages.PROXY_BAD_NAME)
    t.data["name"] = t.text
    return t.ask(PHONE, messages.PROXY_ASK_PHONE)


def _on_phone(t: _Turn) -> str:
    if t.text not in messages.SKIP_WORDS:
        phone = privacy.normalize_phone(t.text)
        if phone is None:
            return t.ask(PHONE, messages.DLG_BAD_PHONE)
        t.data["phone"] = phone
    return t.ask(COMMUNITY, messages.PROXY_ASK_COMMUNITY)


def _on_community(t: _Turn) -> str:
    if not t.text or t.text in messages.SKIP_WORDS:
        return t.ask(COMMUNITY, messages.PROXY_BAD_COMMUNITY)
    t.data["community"] = t.text[:30]
    return t.ask(CONSENT, messages.PROXY_ASK_CONSENT)


def _on_consent(t: _Turn) -> str:
    method = messages.CONSENT_WORDS.get(t.text)
    if method is None:
        return t.ask(CONSENT, messages.PROXY_ASK_CONSENT)
    t.data["consent"] = method
    return t.ask(CONTENT, messages.PROXY_ASK_CONTENT)


def _on_content(t: _Turn) -> str:
    try:
        content = check_content(t.text, t.settings)
    except DomainError as refusal:
        return t.ask(CONTENT, refusal.reply)
    resident = _proxy_resident(t.uow, name=t.data["name"], phone=t.data.get("phone"), community=t.data["community"])
    draft = WishDraft(content=content, phone=t.data.get("phone"), community=t.data["community"], source=SOURCE_PROXY)
    t.uow.dialogues.clear(t.admin.id or 0)
    wish = submit_wish(t.uow, resident=resident, draft=draft, settings=t.settings, filed_by=t.admin)
    wish.consent_method = t.data["consent"]
    t.uow.flush()
    reply = messages.PROXY_OK.format(name=resident.name, code=wish.id, consent=messages.CONSENT_NAMES[wish.consent_method])
    return reply + (messages.PROXY_OK_LINK.format(code=wish.id) if resident.phone else messages.PROXY_OK_NO_PHONE)


def _proxy_resident(uow: UnitOfWork, *, name: str, phone: str | None, community: str) -> Person:
    """The resident without WeChat: the same person again when name and phone match, else a new one."""
    unit = uow.org.ensure("community", community)
    if phone:
        known = uow.session.execute(
            select(Person).where(Person.openid.is_(None), Person.phone == phone, Person.name == name).limit(1)
        ).scalar_one_or_none()
        if known is not None:
            return known
    return uow.people.add(Person(openid=None, role=Role.RESIDENT.value, name=name, phone=phone,
                                 community_id=unit.id, created_at=uow.now))


STEPS: dict[str, Callable[[_Turn], str]] = {
    NAME: _on_name, PHONE: _on_phone, COMMUNITY: _on_community, CONSENT: _on_consent, CONTENT: _on_content,
}


def continue_proxy(uow: UnitOfWork, *, admin: Person, msg: Inbound, settings: Settings) -> str:
    """One answer in the 代办 dialogue (a voice answer counts by its recognition text)."""
    state = uow.dialogues.active(admin.id or 0, uow.now)
    on_step = STEPS.get(state.step) if state is not None else None
    if state is None or on_step is None:
        uow.dialogues.clear(admin.id or 0)
        return messages.DLG_EXPIRED
    text = " ".join((msg.content if msg.msg_type == "text" else msg.recognition).split())
    if text in messages.LEAVE_WORDS:
        uow.dialogues.clear(admin.id or 0)
        return messages.PROXY_LEFT
    try:
        return on_step(_Turn(uow, admin, text, dict(state.data), settings))
    except DomainError as refusal:  # e.g. the resident's limits: the dialogue cannot end in a wish
        uow.dialogues.clear(admin.id or 0)
        return refusal.reply


# -- 关联: taking a proxy-filed wish over ------------------------------------------------------------

def link_wish(uow: UnitOfWork, *, person: Person, wish_id: int, digits: str, settings: Settings) -> str:
    """Move a proxy-filed resident's wishes to the sender when the phone's last four digits match.

    Returns the reply instead of raising: a refusal would roll back the failure count with the
    handler's savepoint, and the count is what limits guessing.
    """
    if person.link_locked_until is not None and person.link_locked_until > uow.now:
        return messages.LINK_LOCKED.format(hours=settings.link_lock_hours)
    wish = uow.wishes.find(wish_id)
    owner = uow.people.get(wish.resident_id) if wish is not None else None
    if (wish is None or owner is None or owner.openid is not None or owner.id == person.id or not owner.phone
            or len(digits) != LINK_DIGITS or not digits.isdigit() or not owner.phone.endswith(digits)):
        person.link_failures += 1
        if person.link_failures >= settings.link_max_failures:
            person.link_failures = 0
            person.link_locked_until = uow.now + timedelta(hours=settings.link_lock_hours)
        uow.flush()
        return messages.LINK_FAILED
    person.link_failures, person.link_locked_until = 0, None
    person.name = person.name or owner.name
    person.phone = person.phone or owner.phone
    person.community_id = person.community_id or owner.community_id
    moved = uow.session.execute(select(Wish).where(Wish.resident_id == owner.id)).scalars().all()
    uow.session.execute(update(Wish).where(Wish.resident_id == owner.id).values(resident_id=person.id)
                        .execution_options(synchronize_session=False))
    for w in moved:
        uow.session.refresh(w)
        uow.wishes.note(w, action="link", actor=person, actor_role=person.role, now=uow.now)
    return messages.LINK_OK.format(code=wish.id)
