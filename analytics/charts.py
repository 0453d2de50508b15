"""Server-rendered SVG charts: plain markup, no script, readable without a browser plug-in."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 800, 360
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 40, 60
BAR = "#3b6fb6"
FONT = 'font-family="sans-serif" font-size="12"'
MAX_X_LABELS = 12


def _svg(body: list[str], title: str, height: int = HEIGHT) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title><rect width="100%" height="100%" fill="#fff"/>'
            f'<text x="{WIDTH // 2}" y="22" text-anchor="middle" font-family="sans-serif" '
            f'font-size="15">{escape(title)}</text>' + "".join(body) + "</svg>")


def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def sales_chart(rows: list[dict[str, Any]], title: str) -> str:
    """Revenue per period as vertical bars, with a labelled axis in yuan."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_max(max((int(r["revenue"]) for r in rows), default=0))
    body = []
    for i in range(5):  # horizontal grid with the axis labels
        value = top * i // 4
        y = TOP + plot_h - plot_h * i / 4
        body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                    f'stroke="#ddd"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                    f'{FONT}>{yuan(value)}</text>')
    if not rows:
        body.append(f'<text x="{WIDTH // 2}" y="{TOP + plot_h // 2}" text-anchor="middle" '
                    f'{FONT}>no sales in this period</text>')
    slot = plot_w / max(len(rows), 1)
    # an axis label is the period's date; every n-th bar is labelled so that labels never meet
    label_px = 7 * 10 + 10
    every = max(1, -(-len(rows) // MAX_X_LABELS), -(-label_px // max(int(slot), 1)))
    for i, r in enumerate(rows):
        h = plot_h * int(r["revenue"]) / top
        x = LEFT + i * slot + slot * 0.1
        label = f'{r["period"]}: {yuan(int(r["revenue"]))} CNY, {r["orders"]} orders'
        body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.8:.1f}" '
                    f'height="{h:.1f}" fill="{BAR}"><title>{escape(label)}</title></rect>')
        if i % every == 0:
            body.append(f'<text x="{x + slot * 0.4:.1f}" y="{TOP + plot_h + 16}" '
                        f'text-anchor="middle" {FONT}>{escape(str(r["period"])[:10])}</text>')
    body.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
                f'y2="{TOP + plot_h}" stroke="#333"/>')
    body.append(f'<text x="{LEFT}" y="{HEIGHT - 14}" {FONT}>revenue, CNY</text>')
    return _svg(body, title)


def funnel_chart(rows: list[dict[str, Any]], title: str) -> str:
    """One horizontal bar per step, as wide as its share of the first step."""
    row_h, bar_x, text_w = 50, 130, 300
    height = TOP + row_h * len(rows) + 20
    first = max(int(rows[0]["users"]), 1) if rows else 1
    plot_w = WIDTH - bar_x - text_w
    body = []
    for i, r in enumerate(rows):
        users = int(r["users"])
        w = max(plot_w * users / first, 1)
        y = TOP + i * row_h + 8
        text = f"{users:,} users"
        if r["rate_from_first"] is not None:
            text += f", {r['rate_from_first']:.1%} of first"
        if r["rate_from_previous"] is not None:
            text += f", {r['rate_from_previous']:.1%} of previous"
        body.append(f'<text x="{bar_x - 10}" y="{y + 22}" text-anchor="end" '
                    f'font-family="sans-serif" font-size="14">{escape(str(r["step"]))}</text>'
                    f'<rect x="{bar_x}" y="{y}" width="{w:.1f}" height="32" '
                    f'fill="{BAR}"><title>{escape(text)}</title></rect>'
                    f'<text x="{bar_x + w + 8:.1f}" y="{y + 21}" {FONT}>{escape(text)}</text>')
    return _svg(body, title, height)
