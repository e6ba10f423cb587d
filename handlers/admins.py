"""Admins: registration, routing, close-out, return visits by phone, figures (issues 3, 9)."""

from __future__ import annotations

from bot.routing import Router

router = Router("admins")
