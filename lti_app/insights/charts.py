"""Levels over time: the data for a student and for the class, and server-rendered SVG that
reads without colour (level names on the axis, marker shapes, dash patterns, direct labels)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.insights.grouping import ScaleLevel, mastery_points
from lti_app.mastery.models import Evidence

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 96, 16, 16, 36
MAX_WEEKS = 52
DASHES = ("", "6 3", "2 3", "8 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")


@dataclass(frozen=True)
class Point:
    at: datetime
    value: Decimal
    label: str = ""
    """What the data table says for this point (a level name, or a class summary)."""


@dataclass(frozen=True)
class Series:
    key: int
    """The competency id."""
    label: str
    points: tuple[Point, ...]


def student_series(
    session: Session, *, context_id: int, person_id: int, labels: dict[int, str]
) -> list[Series]:
    """Each competency's evidence levels for one student, oldest first (withdrawn left out)."""
    rows = session.execute(
        select(Evidence.competency_id, Evidence.observed_at, Evidence.points, Evidence.level_name)
        .where(
            Evidence.context_id == context_id,
            Evidence.person_id == person_id,
            Evidence.withdrawn_at.is_(None),
        )
        .order_by(Evidence.observed_at, Evidence.id)
    ).all()
    points: dict[int, list[Point]] = defaultdict(list)
    for competency_id, observed_at, value, level_name in rows:
        points[competency_id].append(Point(observed_at, value, level_name))
    return [Series(cid, label, tuple(points[cid])) for cid, label in labels.items() if points[cid]]


def class_series(
    session: Session,
    *,
    context_id: int,
    person_ids: set[int],
    labels: dict[int, str],
    levels: Sequence[ScaleLevel],
    now: datetime,
) -> list[Series]:
    """Week by week, the class's average latest level per competency and how many are at
    mastery: each student counts with their most recent evidence up to that week's end."""
    rows = session.execute(
        select(Evidence.competency_id, Evidence.person_id, Evidence.observed_at, Evidence.points)
        .where(Evidence.context_id == context_id, Evidence.withdrawn_at.is_(None))
        .order_by(Evidence.observed_at, Evidence.id)
    ).all()
    rows = [r for r in rows if r[1] in person_ids and r[0] in labels]
    if not rows:
        return []
    threshold = mastery_points(levels) or Decimal(0)
    start = max(rows[0][2], now - timedelta(weeks=MAX_WEEKS))
    week_ends: list[datetime] = []
    cursor = start + timedelta(days=7)
    while cursor < now:
        week_ends.append(cursor)
        cursor += timedelta(days=7)
    week_ends.append(now)
    latest: dict[int, dict[int, Decimal]] = defaultdict(dict)
    series: dict[int, list[Point]] = defaultdict(list)
    index = 0
    for end in week_ends:
        while index < len(rows) and rows[index][2] <= end:
            cid, pid, _at, value = rows[index]
            latest[cid][pid] = value
            index += 1
        for cid, by_student in latest.items():
            values = list(by_student.values())
            mean = sum(values, Decimal(0)) / len(values)
            mastered = sum(1 for v in values if v >= threshold)
            series[cid].append(
                Point(
                    end,
                    mean.quantize(Decimal("0.01")),
                    f"average {mean:.2f}; {mastered} of {len(values)} at mastery",
                )
            )
    return [Series(cid, label, tuple(series[cid])) for cid, label in labels.items() if series[cid]]


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _marker(shape: str, x: float, y: float) -> str:
    if shape == "square":
        return f'<rect x="{_fmt(x - 4)}" y="{_fmt(y - 4)}" width="8" height="8"/>'
    if shape == "triangle":
        return f'<path d="M{_fmt(x)} {_fmt(y - 5)}L{_fmt(x + 5)} {_fmt(y + 4)}H{_fmt(x - 5)}Z"/>'
    if shape == "diamond":
        return (
            f'<path d="M{_fmt(x)} {_fmt(y - 5)}L{_fmt(x + 5)} {_fmt(y)}'
            f'L{_fmt(x)} {_fmt(y + 5)}L{_fmt(x - 5)} {_fmt(y)}Z"/>'
        )
    return f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="4"/>'


def level_chart_svg(
    series: Sequence[Series], *, levels: Sequence[ScaleLevel], title: str, chart_id: str
) -> Markup:
    """A line chart of levels over time: y is the scale (level names as labels), x is time.

    The SVG is an image with a title and a description; the page shows the same data as a
    table, so nothing depends on seeing the chart or its colours."""
    all_points = [p for s in series for p in s.points]
    if not all_points or not levels:
        return Markup("")
    # Results recorded before the scale changed may lie outside today's levels: widen the
    # range to them, or they would be drawn off the picture's edge.
    lo = float(min(min(lv.points for lv in levels), min(p.value for p in all_points)))
    hi = float(max(max(lv.points for lv in levels), max(p.value for p in all_points)))
    span_y = (hi - lo) or 1.0
    first = min(p.at for p in all_points)
    last = max(p.at for p in all_points)
    span_x = (last - first).total_seconds() or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(at: datetime) -> float:
        if last == first:
            return LEFT + plot_w / 2
        return LEFT + (at - first).total_seconds() / span_x * plot_w

    def y_of(value: Decimal) -> float:
        return TOP + plot_h - (float(value) - lo) / span_y * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">Levels over time from {first:%Y-%m-%d} to {last:%Y-%m-%d}; '
        "the table after the chart lists every point.</desc>",
    ]
    threshold = mastery_points(levels)
    for level in levels:
        y = y_of(level.points)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
            f'stroke="#c9d1db" stroke-width="1"'
            + (' stroke-dasharray="4 2"' if level.points == threshold else "")
            + "/>"
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end" font-size="12" '
            f'fill="#1b1f24">{escape(level.name)}</text>'
        )
    ticks = [first + (last - first) * i / 3 for i in range(4)] if last != first else [first]
    for tick in ticks:
        parts.append(
            f'<text x="{_fmt(x_of(tick))}" y="{HEIGHT - 12}" text-anchor="middle" '
            f'font-size="11" fill="#4a5563">{tick:%d %b}</text>'
        )
    for index, item in enumerate(series):
        dash = DASHES[index % len(DASHES)]
        shape = MARKERS[index % len(MARKERS)]
        coords = " ".join(f"{_fmt(x_of(p.at))},{_fmt(y_of(p.value))}" for p in item.points)
        parts.append(
            f'<g fill="#1b1f24" stroke="#1b1f24"><polyline points="{coords}" fill="none" '
            f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
        parts.extend(_marker(shape, x_of(p.at), y_of(p.value)) for p in item.points)
        parts.append("</g>")
        if len(series) > 1:
            end = item.points[-1]
            parts.append(
                f'<text x="{_fmt(min(x_of(end.at) + 6, WIDTH - RIGHT))}" '
                f'y="{_fmt(y_of(end.value) - 6)}" font-size="11" fill="#1b1f24">'
                f"{escape(item.label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
