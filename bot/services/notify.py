"""Queue outbound messages in the caller's transaction (the outbox dispatcher sends them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.inbound import split_utf8
from storage.db import UnitOfWork
from storage.models import Person

CS = "cs"  # customer-service message to one user (template fallback outside the window)
CLAIM_CHANNEL = "claim_webhook"
ADMIN_CHANNEL = "admin_webhook"


def to_person(uow: UnitOfWork, person: Person | None, text: str, *, kind: str = "notice",
              dedupe_key: str | None = None, template: dict[str, Any] | None = None,
              due_at: datetime | None = None) -> None:
    """A text to one person on the Official Account, split at 2,048 bytes.

    `template` holds the placeholder values for the kind's template (interface: Templates),
    used when the person's customer-service window is closed.
    """
    if person is None or not person.openid:
        return  # e.g. a proxy-filed resident who does not follow the account
    for i, chunk in enumerate(split_utf8(text)):
        key = f"{dedupe_key}:{i}" if dedupe_key else None
        uow.outbox.add(channel=CS, kind=kind, recipient=person.openid, now=uow.now, dedupe_key=key, due_at=due_at,
                       payload={"text": chunk, "template": template or {}})


def to_admins(uow: UnitOfWork, text: str, *, kind: str = "alert", dedupe_key: str | None = None) -> None:
    """An alert to the admins' WeCom group and to each admin on the Official Account."""
    uow.outbox.add(channel=ADMIN_CHANNEL, kind=kind, now=uow.now, dedupe_key=dedupe_key,
                   payload={"msgtype": "markdown", "content": text})
    for admin in uow.people.admins():
        to_person(uow, admin, text, kind=kind, dedupe_key=f"{dedupe_key}:{admin.id}" if dedupe_key else None)


def to_claim_channel(uow: UnitOfWork, markdown: str, *, kind: str = "post", dedupe_key: str | None = None) -> None:
    uow.outbox.add(channel=CLAIM_CHANNEL, kind=kind, now=uow.now, dedupe_key=dedupe_key,
                   payload={"msgtype": "markdown", "content": markdown})
