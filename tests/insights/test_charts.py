"""The class's progress over time charts the levels the course's scale gives, as the dashboard
shows them: its calculation method, its self-assessment setting, parents rolled up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.insights.charts import Point, class_series
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.levels import levels_for_course
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import recompute_course, update_scale
from lti_app.mastery.services import record_evidence
from tests.domain_fixtures import Course, make_course

NOW = datetime.now(UTC)


@pytest.fixture
def course(session: Session) -> Course:
    return make_course(session)


def competency(session: Session, course: Course, code: str, parent: int | None = None) -> int:
    """Add a competency; under a parent, recompute the roll-ups as the teacher's page does."""
    added = create_competency(
        session, context_id=course.context_id, code=code, title=code, parent_id=parent
    )
    if parent is not None:
        recompute_course(session, context_id=course.context_id)
    return added.id


def record(
    session: Session,
    course: Course,
    competency_id: int,
    student: int,
    points: int,
    *,
    days_ago: float,
    source: EvidenceSource = EvidenceSource.TEACHER,
) -> None:
    record_evidence(
        session,
        context_id=course.context_id,
        competency_id=competency_id,
        student_ids=[student],
        points=Decimal(points),
        source=source,
        note="",
        recorded_by_id=student if source is EvidenceSource.SELF_ASSESSMENT else course.teacher_id,
        observed_at=NOW - timedelta(days=days_ago),
    )


def chart(session: Session, course: Course, *competency_ids: int) -> dict[int, list[Point]]:
    series = class_series(
        session,
        context_id=course.context_id,
        person_ids=set(course.student_ids),
        labels={cid: str(cid) for cid in competency_ids},
        now=NOW,
    )
    return {s.key: list(s.points) for s in series}


def dashboard_point(session: Session, course: Course, competency_id: int) -> tuple[Decimal, str]:
    """The class's average stored level and count at mastery, as the chart's last point says."""
    stored = [
        row
        for row in levels_for_course(session, context_id=course.context_id)
        if row.competency_id == competency_id and row.level_points is not None
    ]
    mean = sum((row.level_points or Decimal(0) for row in stored), Decimal(0)) / len(stored)
    mastered = sum(row.is_mastered for row in stored)
    label = f"average {mean:.2f}; {mastered} of {len(stored)} at mastery"
    return mean.quantize(Decimal("0.01")), label


def test_class_progress_leaves_out_self_assessment_the_course_does_not_count(
    session: Session, course: Course
) -> None:
    student = course.student_ids[0]
    rated = competency(session, course, "SA")
    record(session, course, rated, student, 1, days_ago=0.2)
    record(session, course, rated, student, 4, days_ago=0.1, source=EvidenceSource.SELF_ASSESSMENT)

    latest = chart(session, course, rated)[rated][-1]
    assert (latest.value, latest.label) == (Decimal("1.00"), "average 1.00; 0 of 1 at mastery")

    # Counted, the self-assessment goes into the decaying average (2.95: Developing).
    update_scale(
        session,
        context_id=course.context_id,
        method=CalculationMethod.DECAYING_AVERAGE,
        counts_self_assessment=True,
    )
    latest = chart(session, course, rated)[rated][-1]
    assert (latest.value, latest.label) == (Decimal("2.00"), "average 2.00; 0 of 1 at mastery")


@pytest.mark.parametrize(
    ("method", "settings"),
    [
        (CalculationMethod.DECAYING_AVERAGE, {"weight": 65}),
        (CalculationMethod.WEIGHTED_AVERAGE, {"weight": 30}),
        (CalculationMethod.N_TIMES, {"n": 2}),
        (CalculationMethod.MOST_RECENT, {}),
        (CalculationMethod.HIGHEST, {}),
        (CalculationMethod.AVERAGE, {}),
    ],
)
def test_class_progress_ends_at_the_dashboard_levels_whatever_the_method(
    session: Session, course: Course, method: CalculationMethod, settings: dict[str, Any]
) -> None:
    update_scale(session, context_id=course.context_id, method=method, **settings)
    comp = competency(session, course, "M")
    histories = ([4, 1], [2, 3, 3], [3, 4, 2])
    for student, history in zip(course.student_ids, histories, strict=True):
        for days_ago, points in zip((20, 10, 1), history, strict=False):
            record(session, course, comp, student, points, days_ago=days_ago)

    latest = chart(session, course, comp)[comp][-1]
    assert (latest.value, latest.label) == dashboard_point(session, course, comp)


def test_class_progress_charts_each_week_by_the_method(session: Session, course: Course) -> None:
    """With "highest", an Advanced result stays the level after a later Emerging one."""
    update_scale(session, context_id=course.context_id, method=CalculationMethod.HIGHEST)
    comp = competency(session, course, "H")
    student = course.student_ids[0]
    record(session, course, comp, student, 4, days_ago=16)
    record(session, course, comp, student, 1, days_ago=2)

    points = chart(session, course, comp)[comp]
    assert len(points) == 3
    assert {(p.value, p.label) for p in points} == {
        (Decimal("4.00"), "average 4.00; 1 of 1 at mastery")
    }


def test_class_progress_rolls_a_parent_up_from_its_parts(session: Session, course: Course) -> None:
    """Proficient on one part and not assessed on the other: the parent is not mastered."""
    parent = competency(session, course, "P")
    part_a = competency(session, course, "PA", parent)
    competency(session, course, "PB", parent)
    record(session, course, part_a, course.student_ids[0], 3, days_ago=1)

    latest = chart(session, course, parent)[parent][-1]
    assert (latest.value, latest.label) == (Decimal("3.00"), "average 3.00; 0 of 1 at mastery")
    assert (latest.value, latest.label) == dashboard_point(session, course, parent)


def test_class_progress_keeps_evidence_recorded_before_a_competency_got_parts(
    session: Session, course: Course
) -> None:
    """Evidence on what later became a parent stands in for the parts not assessed yet."""
    comp = competency(session, course, "E")
    record(session, course, comp, course.student_ids[0], 3, days_ago=9)
    part = competency(session, course, "EA", comp)
    record(session, course, part, course.student_ids[0], 1, days_ago=1)
    competency(session, course, "EB", comp)

    points = chart(session, course, comp)[comp]
    assert [p.label for p in points] == [
        "average 3.00; 1 of 1 at mastery",
        "average 2.00; 0 of 1 at mastery",
    ]
    assert (points[-1].value, points[-1].label) == dashboard_point(session, course, comp)


def test_a_flat_framework_is_charted_without_a_standing_per_student_and_week(
    session: Session, course: Course, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large course's chart took over a second building a Standing (dates, counts) per
    student and week; where no parent rolls up, a score's level and mastery are all it needs,
    and the points come out as the dashboard's."""
    comp = competency(session, course, "F")
    for student, points in zip(course.student_ids, (4, 2, 3), strict=True):
        record(session, course, comp, student, points, days_ago=9)
        record(session, course, comp, student, 5 - points, days_ago=1)

    def refuse(*_args: object) -> None:
        raise AssertionError("a flat competency was scored through a Standing")

    monkeypatch.setattr("lti_app.insights.charts.leaf_standing", refuse)
    latest = chart(session, course, comp)[comp][-1]
    assert (latest.value, latest.label) == dashboard_point(session, course, comp)
