"""Small server-rendered SVG charts that read without colour or script.

Levels are named on the axis, each point carries its level in words (a tooltip title), the
mastery line is dashed and labelled, and the chart has a title and a description for screen
readers. Pages put a data table next to every chart as the text alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH = 540
HEIGHT = 180
LEFT = 150
"""Room for level names on the axis."""
RIGHT = 16
TOP = 12
BOTTOM = 30
POINT_RADIUS = 5


@dataclass(frozen=True)
class AxisLevel:
    name: str
    points: Decimal
    is_mastery: bool = False


@dataclass(frozen=True)
class ChartPoint:
    observed_at: datetime
    points: Decimal
    level_name: str


def short_date(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def level_history_svg(
    points: Sequence[ChartPoint], levels: Sequence[AxisLevel], *, chart_id: str, title: str
) -> Markup:
    """Draw a student's results on one competency, oldest first, against the scale's levels.

    :param chart_id: unique in the page; used for the title and description ids.
    :param levels: the scale, lowest first.
    """
    if not points or not levels:
        return Markup("")
    low = float(min(levels[0].points, min(p.points for p in points)))
    high = float(max(levels[-1].points, max(p.points for p in points)))
    span = (high - low) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: Decimal) -> float:
        return TOP + plot_h - (float(value) - low) / span * plot_h

    def x(index: int) -> float:
        if len(points) == 1:
            return LEFT + plot_w / 2
        return LEFT + 8 + index * (plot_w - 16) / (len(points) - 1)

    first, last = points[0], points[-1]
    description = (
        f"{len(points)} result{'s' if len(points) != 1 else ''} from "
        f"{short_date(first.observed_at)} to {short_date(last.observed_at)}. "
        f"First: {first.level_name}. Latest: {last.level_name}."
    )
    parts: list[str] = [
        f'<svg class="level-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    for level in levels:
        ly = _fmt(y(level.points))
        dash = ' stroke-dasharray="6 4"' if level.is_mastery else ""
        width = "2" if level.is_mastery else "1"
        parts.append(
            f'<line class="grid{" mastery" if level.is_mastery else ""}" x1="{LEFT}" y1="{ly}" '
            f'x2="{WIDTH - RIGHT}" y2="{ly}" stroke="#6b7785" stroke-width="{width}"{dash}/>'
        )
        label = f"{level.name} (mastery)" if level.is_mastery else level.name
        weight = ' font-weight="700"' if level.is_mastery else ""
        parts.append(
            f'<text x="{LEFT - 6}" y="{ly}" text-anchor="end" dominant-baseline="middle" '
            f'font-size="12" fill="#1b1f24"{weight}>'
            f"{escape(label)}</text>"
        )
    coords = [(x(i), y(p.points)) for i, p in enumerate(points)]
    if len(coords) > 1:
        path = " ".join(f"{_fmt(cx)},{_fmt(cy)}" for cx, cy in coords)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="#0b5cad" stroke-width="2.5" '
            f'stroke-linejoin="round"/>'
        )
    for (cx, cy), point in zip(coords, points, strict=True):
        parts.append(
            f'<circle cx="{_fmt(cx)}" cy="{_fmt(cy)}" r="{POINT_RADIUS}" fill="#ffffff" '
            f'stroke="#1b1f24" stroke-width="2"><title>'
            f"{escape(short_date(point.observed_at))}: {escape(point.level_name)}</title></circle>"
        )
    baseline = TOP + plot_h + 18
    parts.append(
        f'<text x="{LEFT}" y="{baseline}" font-size="12" fill="#4a5563">'
        f"{escape(short_date(first.observed_at))}</text>"
    )
    if len(points) > 1:
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{baseline}" text-anchor="end" font-size="12" '
            f'fill="#4a5563">{escape(short_date(last.observed_at))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every dynamic piece above is escaped
