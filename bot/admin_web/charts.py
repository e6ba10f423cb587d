"""The weekly trend as an inline SVG: no image route, no external assets, sharp on a phone."""

from __future__ import annotations

from datetime import datetime
from html import escape

from bot.config import Settings

WIDTH, HEIGHT, PAD = 600, 220, 30


def trend_svg(trend: list[tuple[datetime, int, int]], settings: Settings) -> str:
    """Bars for wishes submitted per week, a line for wishes fulfilled; weeks in local time."""
    if not trend:
        return ""
    top = max(1, *(max(s, f) for _, s, f in trend))
    slot = (WIDTH - 2 * PAD) / len(trend)
    y = lambda v: HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top  # noqa: E731
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" class="trend" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<text x="{PAD - 4}" y="{PAD}" font-size="11" text-anchor="end">{top}</text>']
    points = []
    for i, (week, submitted, fulfilled) in enumerate(trend):
        x = PAD + i * slot
        parts.append(f'<rect x="{x + slot * 0.15:.1f}" y="{y(submitted):.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{HEIGHT - PAD - y(submitted):.1f}" fill="#f4b6b6"><title>{submitted}</title></rect>')
        points.append(f"{x + slot / 2:.1f},{y(fulfilled):.1f}")
        label = week.astimezone(settings.tz)
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle">'
                     f'{escape(f"{label.month}/{label.day}")}</text>')
    parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#c00000" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)
