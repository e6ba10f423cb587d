"""The digest chart: a small PNG (matplotlib, Agg) sent to the admins' WeCom group as an image.

Uses the object API (no pyplot), so it is safe on the scheduler's worker thread. Chinese labels
need a CJK font; where none is installed the chart falls back to English labels rather than
drawing empty boxes.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bot import messages  # noqa: E402
from bot.config import Settings  # noqa: E402

if TYPE_CHECKING:
    from bot.services.digest import Digest

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN")
FALLBACK_LABELS = ("new", "published", "claimed", "fulfilled", "closed", "deferred", "assigned")
BAR_COLOR = "#c0392b"


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed font that can draw Chinese, if any."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def digest_chart_png(d: "Digest", settings: Settings) -> bytes:
    """A bar chart of the period's counts, about 20 KB."""
    from bot.services.digest import COUNT_KEYS

    font = cjk_font()
    values = [d.counts[k] for k in COUNT_KEYS]
    period = d.period
    if font:
        labels: tuple[str, ...] = messages.DIGEST_CHART_LABELS
        title = messages.DIGEST_CHART_TITLE.format(name=messages.DIGEST_NAMES[period.kind],
                                                   start=f"{period.start.date():%m.%d}", end=f"{period.last_day:%m.%d}")
    else:
        labels = FALLBACK_LABELS
        title = f"{period.kind} {period.start.date():%Y-%m-%d} - {period.last_day:%Y-%m-%d}"
    fig = Figure(figsize=(5.6, 2.8), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = ax.bar(range(len(values)), values, color=BAR_COLOR, width=0.6)
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_xticks(range(len(values)), labels, fontsize=8, family=font or "DejaVu Sans")
    ax.set_title(title, fontsize=10, family=font or "DejaVu Sans")
    ax.set_ylim(0, max(values + [1]) * 1.25)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="y", labelsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.14)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
