"""Party members: binding, the hall, claims and reports (issue 4)."""

from __future__ import annotations

from bot.routing import Router

router = Router("members")
