"""The state-of-health chart as server-rendered SVG: no script, no external resource.

The SVG is built from numbers and dates this module formats itself; the only text in it is
escaped anyway, because it ends up inside the HTML page unescaped (as markup). Presentation
attributes (``fill``, ``stroke``) rather than ``style`` keep it inside the page's
Content-Security-Policy. Thermal and tamper events are marked on the time axis, so a buyer
sees whether a drop in health followed an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from markupsafe import Markup, escape

from .health import Event, SohPoint

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 16, 44
COLOURS = {"line": "#1d5fa8", "grid": "#d5dbe3", "text": "#333", "thermal": "#c0392b",
           "tamper": "#d68910"}


def _x(at: datetime, start: datetime, span: float) -> float:
    return LEFT + (at - start).total_seconds() / span * (WIDTH - LEFT - RIGHT)


def _y(pct: Decimal | float, low: float, high: float) -> float:
    return TOP + (high - float(pct)) / (high - low) * (HEIGHT - TOP - BOTTOM)


def _range(points: Sequence[SohPoint]) -> tuple[float, float]:
    """The y range: up to 100 %, down to 10 below the lowest reading (a multiple of 10)."""
    lowest = min(float(p.pct) for p in points)
    return max(0.0, (int(lowest) // 10) * 10 - 10.0), 100.0


def soh_chart(points: Sequence[SohPoint], events: Sequence[Event] = ()) -> Markup:
    """An ``<svg>`` of ``points`` (sorted by time), with ``events`` marked; a short note in
    the same frame when there is nothing to draw."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           'class="soh-chart" role="img" aria-labelledby="soh-title soh-desc">',
           '<title id="soh-title">State of health over time</title>']
    if not points:
        out.append('<desc id="soh-desc">No state-of-health readings yet.</desc>')
        out.append(f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle" '
                   f'fill="{COLOURS["text"]}" font-size="16">No state-of-health readings '
                   'yet</text></svg>')
        return Markup("".join(out))
    first, last = points[0], points[-1]
    out.append(f'<desc id="soh-desc">{len(points)} readings from {escape(_day(first.at))} '
               f'({first.pct} %) to {escape(_day(last.at))} ({last.pct} %).</desc>')
    start, end = first.at, last.at
    when = [e.start for e in events]
    start, end = min([start, *when]), max([end, *when])
    if end <= start:
        start, end = start - timedelta(days=1), end + timedelta(days=1)
    span = (end - start).total_seconds()
    low, high = _range(points)
    _grid(out, low, high)
    _time_axis(out, start, end, span)
    for event in events:
        x = _x(event.start, start, span)
        colour = COLOURS.get(event.category, COLOURS["text"])
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" '
                   f'stroke="{colour}" stroke-dasharray="4 3" stroke-width="1.5">'
                   f'<title>{escape(event.description)} ({escape(_day(event.start))})</title>'
                   '</line>')
    coords = " ".join(f"{_x(p.at, start, span):.1f},{_y(p.pct, low, high):.1f}"
                      for p in points)
    out.append(f'<polyline points="{coords}" fill="none" stroke="{COLOURS["line"]}" '
               'stroke-width="2.5" stroke-linejoin="round"/>')
    for point in points:
        out.append(f'<circle cx="{_x(point.at, start, span):.1f}" '
                   f'cy="{_y(point.pct, low, high):.1f}" r="4" fill="{COLOURS["line"]}">'
                   f'<title>{escape(_day(point.at))}: {point.pct} %</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))


def _grid(out: list[str], low: float, high: float) -> None:
    step = 10 if high - low <= 60 else 20
    value = high
    while value >= low:
        y = _y(value, low, high)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                   f'stroke="{COLOURS["grid"]}" stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
                   f'fill="{COLOURS["text"]}">{value:.0f} %</text>')
        value -= step


def _time_axis(out: list[str], start: datetime, end: datetime, span: float) -> None:
    ticks = 4
    for i in range(ticks + 1):
        at = start + (end - start) * i / ticks
        x = _x(at, start, span)
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 20}" text-anchor="{anchor}" '
                   f'font-size="12" fill="{COLOURS["text"]}">{escape(_day(at))}</text>')


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


__all__ = ["soh_chart"]
