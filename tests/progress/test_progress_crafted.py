"""Adversarial checks of progress over time: charts fed odd histories, a student's own pages
fed hostile forms and double clicks, and a student reaching for someone else's chart."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import func, select

from lti_app.competencies.services import create_competency
from lti_app.insights import charts as class_charts
from lti_app.insights.grouping import ScaleLevel
from lti_app.insights.groups import create_group
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import record_evidence
from lti_app.progress import charts as student_charts
from tests.conftest import LtiActions
from tests.progress.pages import context_id, form, person_id, unique, unit_of_work, url

HUGE = "9" * 25
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
LEVELS = (
    ScaleLevel("Emerging", Decimal(1), "#8a1c1c", 0, False),
    ScaleLevel("Developing", Decimal(2), "#8a5a00", 1, False),
    ScaleLevel("Proficient", Decimal(3), "#1d6b2f", 2, True),
)


def _plotted(svg: str) -> list[tuple[float, float]]:
    """Every plotted coordinate: polyline points, circles, squares and path markers."""
    coords: list[tuple[float, float]] = []
    for points in re.findall(r'<polyline points="([^"]+)"', svg):
        for pair in points.split():
            x, y = pair.split(",")
            coords.append((float(x), float(y)))
    coords += [(float(x), float(y)) for x, y in re.findall(r'cx="([-\d.]+)" cy="([-\d.]+)"', svg)]
    coords += [
        (float(x), float(y)) for x, y in re.findall(r'<rect x="([-\d.]+)" y="([-\d.]+)"', svg)
    ]
    coords += [(float(x), float(y)) for x, y in re.findall(r'd="M([-\d.]+) ([-\d.]+)', svg)]
    return coords


def _finite_coordinates(svg: str) -> bool:
    """Every coordinate attribute is a finite number (no "nan" or "inf" from a zero span)."""
    values = re.findall(r' (?:x|y|cx|cy|x1|x2|y1|y2)="([^"]*)"', svg)
    values += [v for pts in re.findall(r'points="([^"]+)"', svg) for v in re.split("[ ,]", pts)]
    return bool(values) and all(re.fullmatch(r"-?\d+(\.\d+)?", v) for v in values)


def _inside(svg: str, width: int, height: int) -> list[tuple[float, float]]:
    return [(x, y) for x, y in _plotted(svg) if not (0 <= x <= width and 0 <= y <= height)]


def test_results_from_before_a_scale_change_stay_inside_the_chart() -> None:
    """A course that dropped its "Advanced" level (4 points) or started at 0 keeps old results
    outside today's scale. Those points must still be drawn inside the picture, where the
    teacher and the student can see them, not clipped off its edge."""
    series = [
        class_charts.Series(
            7,
            "C7 Cells",
            (
                class_charts.Point(NOW - timedelta(days=20), Decimal(4), "Advanced"),
                class_charts.Point(NOW - timedelta(days=10), Decimal(0), "Beginning"),
                class_charts.Point(NOW, Decimal(2), "Developing"),
            ),
        )
    ]
    svg = str(class_charts.level_chart_svg(series, levels=LEVELS, title="t", chart_id="c7"))
    assert len(_plotted(svg)) >= 4
    assert _inside(svg, class_charts.WIDTH, class_charts.HEIGHT) == []

    points = [
        student_charts.ChartPoint(NOW - timedelta(days=20), Decimal(4), "Advanced"),
        student_charts.ChartPoint(NOW, Decimal(0), "Beginning"),
    ]
    axis = [student_charts.AxisLevel(lv.name, lv.points, lv.is_mastery) for lv in LEVELS]
    svg = str(student_charts.level_history_svg(points, axis, chart_id="x", title="t"))
    assert _inside(svg, student_charts.WIDTH, student_charts.HEIGHT) == []


def test_charts_survive_odd_histories() -> None:
    """One result, results all on one instant, a scale of one level, a year and a half of
    weekly class history: a chart or nothing, never an error or NaN coordinates."""
    one = [class_charts.Series(1, "A", (class_charts.Point(NOW, Decimal(2), "Developing"),))]
    svg = str(class_charts.level_chart_svg(one, levels=LEVELS, title="t", chart_id="a"))
    assert _finite_coordinates(svg)
    assert _inside(svg, class_charts.WIDTH, class_charts.HEIGHT) == []
    flat = [ScaleLevel("Done", Decimal(1), "#000000", 0, True)]
    same = [
        class_charts.Series(
            2,
            "B",
            tuple(class_charts.Point(NOW, Decimal(1), "Done") for _ in range(3)),
        )
    ]
    svg = str(class_charts.level_chart_svg(same, levels=flat, title="t", chart_id="b"))
    assert _finite_coordinates(svg)
    assert str(class_charts.level_chart_svg([], levels=LEVELS, title="t", chart_id="c")) == ""
    axis = [student_charts.AxisLevel("Done", Decimal(1), True)]
    svg = str(
        student_charts.level_history_svg(
            [student_charts.ChartPoint(NOW, Decimal(1), "Done")], axis, chart_id="d", title="t"
        )
    )
    assert _finite_coordinates(svg)


def _self_assess_form(
    lti: LtiActions, sub: str, comp_id: int
) -> tuple[httpx.Client, dict[str, str], str]:
    home = lti.launch(sub)
    page = home.client.get(url(home.response, "/progress/"))
    assert page.status_code == 200
    found = form(page, "/progress/self-assessment")
    fields = {k: v for k, v in found.fields.items() if k in ("lt", "csrf_token")}
    level_ids = re.findall(
        rf'<select id="level-{comp_id}" name="level_id">(.*?)</select>', page.text, re.S
    )
    first_level = re.findall(r'<option value="(\d+)"', level_ids[0])[0]
    fields.update({"competency_id": str(comp_id), "level_id": first_level, "note": ""})
    return home.client, fields, found.action


def test_self_assessment_with_hostile_fields_is_refused_in_words(
    lti: LtiActions, database_url: str
) -> None:
    """A student's tampered form (odd digits, huge numbers, another course's competency or
    level, a NUL in the note) is refused in words and records nothing."""
    sub = "user-s05"
    lti.launch(sub)
    lti.launch("user-t02", context_id="course-chem-club")
    with unit_of_work(database_url) as s:
        ctx, me = context_id(s, lti.lms), person_id(s, lti.lms, sub)
        comp = create_competency(s, context_id=ctx, code=unique("SA"), title="Self <b>check</b>")
        club = context_id(s, lti.lms, "course-chem-club")
        foreign = create_competency(s, context_id=club, code=unique("CL"), title="Club only")
        foreign_level = get_or_create_scale(s, context_id=club).levels[-1].id
        comp_id, foreign_id = comp.id, foreign.id
    client, fields, action = _self_assess_form(lti, sub, comp_id)
    tries = [
        ({"competency_id": "²"}, 400),
        ({"competency_id": HUGE}, 404),
        ({"competency_id": "-5"}, 404),
        ({"competency_id": str(foreign_id)}, 404),
        ({"level_id": str(foreign_level)}, 400),
        ({"level_id": HUGE}, 400),
        ({"level_id": "²"}, 400),
        ({"note": "I get it\x00 now"}, 400),
        ({"note": "x" * 2001}, 400),
    ]
    for change, status in tries:
        answer = client.post(action, data={**fields, **change})
        assert answer.status_code == status, (change, answer.status_code)
        assert "unexpected problem" not in answer.text, change
    with unit_of_work(database_url) as s:
        stored = s.scalar(
            select(func.count(Evidence.id)).where(
                Evidence.person_id == me, Evidence.competency_id.in_([comp_id, foreign_id])
            )
        )
    assert stored == 0


def test_double_click_on_a_self_assessment_records_it_once(
    lti: LtiActions, database_url: str
) -> None:
    """A student who double-clicks "Save my self-assessment" has one self-assessment, and
    neither click shows an error."""
    sub = "user-s06"
    lti.launch(sub)
    with unit_of_work(database_url) as s:
        ctx, me = context_id(s, lti.lms), person_id(s, lti.lms, sub)
        comp_id = create_competency(s, context_id=ctx, code=unique("DC"), title="Twice").id
    client, fields, action = _self_assess_form(lti, sub, comp_id)
    fields["note"] = "I can explain it to a friend"
    codes: list[int] = []
    barrier = threading.Barrier(3)

    def click() -> None:
        barrier.wait()
        codes.append(client.post(action, data=fields).status_code)

    threads = [threading.Thread(target=click) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) == {302}, codes
    with unit_of_work(database_url) as s:
        stored = s.scalar(
            select(func.count(Evidence.id)).where(
                Evidence.person_id == me, Evidence.competency_id == comp_id
            )
        )
    assert stored == 1


def test_a_student_sees_only_their_own_course_chart_and_no_teacher_groups(
    lti: LtiActions, database_url: str
) -> None:
    """José is in Biology and in the Chemistry club. Launched from the club, his chart shows
    only the club's results; a classmate's chart and the class chart are refused; the groups
    his teacher put him in never show (they are teacher-only)."""
    sub = "user-s01"
    lti.launch("user-t01")
    lti.launch(sub)
    lti.launch("user-s02")
    lti.launch("user-t02", context_id="course-chem-club")
    with unit_of_work(database_url) as s:
        bio, me = context_id(s, lti.lms), person_id(s, lti.lms, sub)
        classmate = person_id(s, lti.lms, "user-s02")
        club = context_id(s, lti.lms, "course-chem-club")
        teacher = person_id(s, lti.lms, "user-t01")
        code_bio, code_club = unique("BIO"), unique("CLUB")
        bio_comp = create_competency(s, context_id=bio, code=code_bio, title="<i>Cells</i>")
        club_comp = create_competency(s, context_id=club, code=code_club, title="Flames")
        for ctx, comp_id in ((bio, bio_comp.id), (club, club_comp.id)):
            record_evidence(
                s,
                context_id=ctx,
                competency_id=comp_id,
                student_ids=[me],
                points=Decimal(2),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=teacher,
                observed_at=datetime.now(UTC) - timedelta(days=1),
            )
        group_name = unique("Secret group ")
        create_group(s, context_id=bio, name=group_name, person_ids=[me], created_by_id=teacher)
    in_club = lti.launch(sub, context_id="course-chem-club")
    mine = in_club.client.get(url(in_club.response, f"/insights/students/{me}/progress"))
    assert mine.status_code == 200
    assert code_club in mine.text
    assert code_bio not in mine.text
    in_bio = lti.launch(sub)
    mine = in_bio.client.get(url(in_bio.response, f"/insights/students/{me}/progress"))
    assert mine.status_code == 200
    assert code_bio in mine.text
    assert code_club not in mine.text
    assert "&lt;i&gt;Cells&lt;/i&gt;" in mine.text
    assert "<i>Cells" not in mine.text
    assert group_name not in mine.text
    for path in (f"/insights/students/{classmate}/progress", "/insights/progress"):
        answer = in_bio.client.get(url(in_bio.response, path))
        assert answer.status_code == 403, path
    mine = in_bio.client.get(url(in_bio.response, "/progress/"))
    assert group_name not in mine.text
    assert "&lt;i&gt;Cells&lt;/i&gt;" in mine.text
