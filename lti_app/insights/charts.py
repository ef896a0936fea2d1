"""Levels over time: the data for a student and for the class, and server-rendered SVG that
reads without colour (level names on the axis, marker shapes, dash patterns, direct labels)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.insights.grouping import ScaleLevel, mastery_points
from lti_app.mastery.calculation import calculate, level_for
from lti_app.mastery.models import IN_ORDER_OBSERVED, Evidence, EvidenceSource
from lti_app.mastery.rollup import (
    Scoring,
    Standing,
    counted_children,
    leaf_standing,
    roll_up,
)
from lti_app.mastery.scales import get_or_create_scale
from lti_app.timezones import in_zone, local_date, on_day

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 96, 16, 16, 36
MAX_WEEKS = 52
UTC_ZONE = ZoneInfo("UTC")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")


@dataclass(frozen=True)
class Point:
    at: datetime
    value: Decimal
    label: str = ""
    """What the data table says for this point (a level name, or a class summary)."""
    on: date | None = None
    """The day observed, as typed: the table and chart show this day whatever the zone."""


@dataclass(frozen=True)
class Series:
    key: int
    """The competency id."""
    label: str
    points: tuple[Point, ...]


def seen_in(series: list[Series], zone: ZoneInfo) -> list[Series]:
    """The series with its times in the course's zone: the dates the tables and charts show
    are the school's (the points stay the same moments)."""
    return [
        replace(
            one,
            points=tuple(
                replace(p, at=in_zone(p.at, zone) if p.on is None else on_day(p.on, p.at, zone))
                for p in one.points
            ),
        )
        for one in series
    ]


def student_series(
    session: Session, *, context_id: int, person_id: int, labels: dict[int, str]
) -> list[Series]:
    """Each competency's evidence levels for one student, oldest first (withdrawn left out)."""
    rows = session.execute(
        select(
            Evidence.competency_id,
            Evidence.observed_at,
            Evidence.observed_on,
            Evidence.points,
            Evidence.level_name,
        )
        .where(
            Evidence.context_id == context_id,
            Evidence.person_id == person_id,
            Evidence.withdrawn_at.is_(None),
        )
        .order_by(*IN_ORDER_OBSERVED)
    ).all()
    points: dict[int, list[Point]] = defaultdict(list)
    for competency_id, observed_at, observed_on, value, level_name in rows:
        points[competency_id].append(Point(observed_at, value, level_name, observed_on))
    return [Series(cid, label, tuple(points[cid])) for cid, label in labels.items() if points[cid]]


class _Result(NamedTuple):
    points: Decimal
    observed_at: datetime
    observed_on: date


@dataclass
class _Tally:
    """The class's levels on one competency: their sum, how many, how many at mastery."""

    total: Decimal = Decimal(0)
    count: int = 0
    mastered: int = 0

    def add(self, mark: tuple[Decimal, bool] | None, sign: int = 1) -> None:
        if mark is not None:
            self.total += sign * mark[0]
            self.count += sign
            self.mastered += sign * mark[1]


def class_series(
    session: Session,
    *,
    context_id: int,
    person_ids: set[int],
    labels: dict[int, str],
    now: datetime,
    zone: ZoneInfo = UTC_ZONE,
) -> list[Series]:
    """Week by week, the class's average level per competency and how many are at mastery.

    Weeks end on the course's calendar days (`zone`), a week after the first evidence's day,
    the last on today; a week's end counts the evidence observed up to that day.

    Each student's level at a week's end is the one the course's scale gives from their evidence
    up to then, as the stored levels do (`mastery.rollup`): its calculation method, its
    self-assessment setting, parents rolled up from their parts. The last week ends with the
    levels the dashboard shows. Students without a level (n times not reached) are left out, as
    the dashboard counts them not assessed. Four queries, whatever the size of the class.
    """
    scale = get_or_create_scale(session, context_id=context_id)
    rules = Scoring.of(scale)
    framework = session.execute(
        select(Competency.id, Competency.parent_id, Competency.archived_at).where(
            Competency.context_id == context_id
        )
    ).all()
    parent_of = {cid: parent_id for cid, parent_id, _ in framework}
    children_of = counted_children(framework)
    # A competency and the parents above it, nearest first: what a new result changes.
    chains: dict[int, list[int]] = {}
    for cid in parent_of:
        chain: list[int] = []
        node: int | None = cid
        while node is not None and node not in chain:
            chain.append(node)
            node = parent_of.get(node)
        chains[cid] = chain
    # What the labelled competencies are scored from: themselves and the parts below them.
    wanted = {cid for cid, chain in chains.items() if labels.keys() & chain}
    rolled_up = wanted & children_of.keys()

    query = select(
        Evidence.competency_id,
        Evidence.person_id,
        Evidence.observed_on,
        Evidence.observed_at,
        Evidence.points,
    ).where(Evidence.context_id == context_id, Evidence.withdrawn_at.is_(None))
    if not scale.counts_self_assessment:
        query = query.where(Evidence.source != EvidenceSource.SELF_ASSESSMENT)
    rows = [
        row
        for row in session.execute(query.order_by(*IN_ORDER_OBSERVED))
        if row[1] in person_ids and row[0] in wanted
    ]
    if not rows:
        return []
    # Whole days: a week counted from the first evidence's exact time could end earlier
    # today, and today's point came twice in the table.
    today = local_date(now, zone)
    cursor = max(rows[0][2], today - timedelta(weeks=MAX_WEEKS)) + timedelta(days=7)
    week_ends: list[date] = []
    while cursor < today:
        week_ends.append(cursor)
        cursor += timedelta(days=7)
    week_ends.append(today)

    # Each level's points, read off the ORM objects once: this loop runs per student and week.
    level_points = {level: points for points, level in rules.levels}
    # A competency that neither rolls up nor counts towards a parent shown here only needs
    # its score's level and mastery: no Standing, no latest dates (86,000 re-scorings on a
    # large course, where building Standings was most of the page's time).
    plain = {
        cid
        for cid in wanted
        if cid not in children_of and not any(node in rolled_up for node in chains[cid][1:])
    }
    values: dict[tuple[int, int], list[Decimal]] = defaultdict(list)
    results: dict[tuple[int, int], list[_Result]] = defaultdict(list)
    standings: dict[tuple[int, int], Standing] = {}
    marks: dict[tuple[int, int], tuple[Decimal, bool] | None] = {}
    # Evidence recorded on a competency before it had parts: `roll_up`'s `direct`.
    on_parent: dict[tuple[int, int], Standing] = {}
    tallies: dict[int, _Tally] = {cid: _Tally() for cid in labels}
    series: dict[int, list[Point]] = defaultdict(list)
    # Scores have two decimals, so a course meets few of them: each one's level is looked up once.
    score_marks: dict[Decimal, tuple[Decimal, bool]] = {}

    def score_mark(score: Decimal | None) -> tuple[Decimal, bool] | None:
        if score is None:
            return None
        found = score_marks.get(score)
        if found is None:
            level = level_for(score, rules.levels)
            found = score_marks[score] = (level_points[level], score >= rules.mastery_points)
        return found

    def mark(standing: Standing | None) -> tuple[Decimal, bool] | None:
        if standing is None or standing.level is None:
            return None
        return level_points[standing.level], standing.is_mastered

    def settle(pair: tuple[int, int], new: tuple[Decimal, bool] | None) -> None:
        if (tally := tallies.get(pair[1])) is not None:
            tally.add(marks.get(pair), -1)
            tally.add(new)
        marks[pair] = new

    def settle_standing(pair: tuple[int, int], standing: Standing) -> None:
        standings[pair] = standing
        settle(pair, mark(standing))

    index = 0
    for week, end in enumerate(week_ends, start=1):
        touched: set[tuple[int, int]] = set()
        touched_plain: set[tuple[int, int]] = set()
        # The last week takes everything, as the stored levels do (a teacher east of the
        # course's zone may have typed tomorrow).
        last_week = week == len(week_ends)
        while index < len(rows) and (last_week or rows[index][2] <= end):
            cid, pid, observed_on, observed_at, value = rows[index]
            if cid in plain:
                values[(pid, cid)].append(value)
                touched_plain.add((pid, cid))
            else:
                results[(pid, cid)].append(_Result(value, observed_at, observed_on))
                touched.add((pid, cid))
            index += 1
        for pair in touched_plain:
            score = calculate(
                rules.method,
                values[pair],
                weight=rules.weight,
                n=rules.n,
                mastery_points=rules.mastery_points,
            )
            settle(pair, score_mark(score))
        parents: set[tuple[int, int]] = set()
        for pid, cid in touched:
            standing = leaf_standing(rules, results[(pid, cid)])
            if cid in children_of:
                on_parent[(pid, cid)] = standing
            else:
                settle_standing((pid, cid), standing)
            parents.update((pid, node) for node in chains[cid] if node in rolled_up)
        # Deepest first, so each parent rolls up from parts already brought up to date.
        for pid, cid in sorted(parents, key=lambda pair: -len(chains[pair[1]])):
            parts = [standings.get((pid, child)) for child in children_of[cid]]
            settle_standing((pid, cid), roll_up(rules, parts, on_parent.get((pid, cid))))
        for cid, tally in tallies.items():
            if not tally.count:
                continue
            mean = tally.total / tally.count
            series[cid].append(
                Point(
                    now if last_week else datetime.combine(end, time(12), tzinfo=zone),
                    mean.quantize(Decimal("0.01")),
                    f"average {mean:.2f}; {tally.mastered} of {tally.count} at mastery",
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
    for index, tick in enumerate(ticks):
        # The last tick sits on the plot's right edge: centred there, half of it fell off the
        # picture. It ends at the edge instead.
        anchor = "end" if len(ticks) > 1 and index == len(ticks) - 1 else "middle"
        parts.append(
            f'<text x="{_fmt(x_of(tick))}" y="{HEIGHT - 12}" text-anchor="{anchor}" '
            f'font-size="12" fill="#4a5563">{tick:%d %b}</text>'
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
                f'y="{_fmt(y_of(end.value) - 6)}" font-size="12" fill="#1b1f24">'
                f"{escape(item.label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
