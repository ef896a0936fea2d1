"""Evidence, stored levels, roll-ups and scale changes against a real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from lti_app.competencies import services as competencies
from lti_app.competencies.errors import CompetencyNotFoundError
from lti_app.mastery import services
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.errors import EvidenceNotFoundError, InvalidEvidenceError, InvalidScaleError
from lti_app.mastery.levels import current_levels, levels_for_course, mastered_competency_ids
from lti_app.mastery.models import EvidenceSource, RevisionAction
from lti_app.mastery.scales import (
    DEFAULT_LEVELS,
    LevelSpec,
    get_or_create_scale,
    recompute_course,
    update_scale,
)
from lti_app.mastery.services import MasteryChange
from tests.domain_fixtures import Course

D = Decimal
TEACHER = EvidenceSource.TEACHER
NOW = datetime.now(UTC)


def competency(session: Session, course: Course, code: str, parent: int | None = None) -> int:
    return competencies.create_competency(
        session, context_id=course.context_id, code=code, title=code, parent_id=parent
    ).id


def record(
    session: Session,
    course: Course,
    competency_id: int,
    points: str,
    students: list[int] | None = None,
    *,
    days_ago: float = 0,
    source: EvidenceSource = TEACHER,
) -> list[MasteryChange]:
    return services.record_evidence(
        session,
        context_id=course.context_id,
        competency_id=competency_id,
        student_ids=students or course.student_ids[:1],
        points=Decimal(points),
        source=source,
        note="",
        recorded_by_id=course.teacher_id,
        observed_at=NOW - timedelta(days=days_ago),
    )


def level(session: Session, course: Course, competency_id: int, student: int | None = None) -> Any:
    student = student or course.student_ids[0]
    return current_levels(session, context_id=course.context_id, person_id=student).get(
        competency_id
    )


def use_method(
    session: Session, course: Course, method: CalculationMethod, **kwargs: Any
) -> list[MasteryChange]:
    return update_scale(session, context_id=course.context_id, method=method, **kwargs)


def test_default_scale_is_created_once(session: Session, course: Course) -> None:
    scale = get_or_create_scale(session, context_id=course.context_id)
    assert [(lv.name, lv.points, lv.is_mastery) for lv in scale.levels] == [
        ("Emerging", D(1), False),
        ("Developing", D(2), False),
        ("Proficient", D(3), True),
        ("Advanced", D(4), False),
    ]
    assert scale.method is CalculationMethod.DECAYING_AVERAGE
    assert (scale.weight, scale.counts_self_assessment) == (65, False)
    assert scale.mastery_points == 3
    assert get_or_create_scale(session, context_id=course.context_id).id == scale.id


def test_record_evidence_for_several_students_updates_their_levels(
    session: Session, course: Course
) -> None:
    comp = competency(session, course, "A")
    changes = record(session, course, comp, "3", course.student_ids)
    assert sorted(changes, key=lambda c: c.person_id) == [
        MasteryChange(
            context_id=course.context_id,
            person_id=student,
            competency_id=comp,
            old_score=None,
            new_score=Decimal(3),
            old_level_name=None,
            new_level_name="Proficient",
            is_mastered=True,
            was_mastered=False,
        )
        for student in sorted(course.student_ids)
    ]
    assert changes[0].became_mastered
    stored = level(session, course, comp)
    assert (stored.score, stored.level_name, stored.level_points) == (3, "Proficient", 3)
    assert (stored.is_mastered, stored.evidence_count) == (True, 1)
    assert stored.last_evidence_at == NOW
    history = services.evidence_history(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    )
    assert [(e.points, e.level_name, e.source) for e in history] == [(D(3), "Proficient", TEACHER)]

    # Decaying average 65%: 3 then 1 -> 3*.35 + 1*.65 = 1.70 -> Emerging, no longer mastered.
    changes = record(session, course, comp, "1")
    assert [(c.old_score, c.new_score, c.new_level_name, c.is_mastered) for c in changes] == [
        (D(3), Decimal("1.70"), "Emerging", False)
    ]
    # The same result again can leave the level as it was: no change reported.
    comp_b = competency(session, course, "B")
    other_student = [course.student_ids[1]]
    record(session, course, comp_b, "4", other_student, days_ago=1)
    use_method(session, course, CalculationMethod.HIGHEST)
    assert record(session, course, comp_b, "2", other_student) == []


def test_evidence_is_validated(session: Session, course: Course, other_course: Course) -> None:
    comp = competency(session, course, "A")
    for points in ("0.5", "4.01", "2.005"):
        with pytest.raises(InvalidEvidenceError):
            record(session, course, comp, points)
    with pytest.raises(InvalidEvidenceError, match="future"):
        record(session, course, comp, "3", days_ago=-1)
    with pytest.raises(InvalidEvidenceError, match="time zone"):
        services.record_evidence(
            session,
            context_id=course.context_id,
            competency_id=comp,
            student_ids=course.student_ids,
            points=Decimal(3),
            source=TEACHER,
            note="",
            recorded_by_id=course.teacher_id,
            observed_at=datetime(2024, 1, 1),  # noqa: DTZ001 -- the naive time under test
        )
    with pytest.raises(InvalidEvidenceError, match="student"):
        services.record_evidence(
            session,
            context_id=course.context_id,
            competency_id=comp,
            student_ids=[],
            points=Decimal(3),
            source=TEACHER,
            note="",
            recorded_by_id=course.teacher_id,
        )
    theirs = competency(session, other_course, "A")
    with pytest.raises(CompetencyNotFoundError):
        record(session, course, theirs, "3")
    competencies.archive_competency(session, context_id=course.context_id, competency_id=comp)
    with pytest.raises(InvalidEvidenceError, match="archived"):
        record(session, course, comp, "3")


def test_late_make_up_evidence_is_ordered_by_when_it_was_observed(
    session: Session, course: Course
) -> None:
    use_method(session, course, CalculationMethod.MOST_RECENT)
    comp = competency(session, course, "A")
    record(session, course, comp, "4", days_ago=1)
    # Recorded now, but the student did this work two weeks ago.
    assert record(session, course, comp, "1", days_ago=14) == []
    stored = level(session, course, comp)
    assert (stored.score, stored.level_name, stored.evidence_count) == (4, "Advanced", 2)
    assert stored.last_evidence_at == NOW - timedelta(days=1)
    history = services.evidence_history(
        session, context_id=course.context_id, person_id=course.student_ids[0], competency_id=comp
    )
    assert [e.points for e in history] == [1, 4]


def test_correct_and_withdraw_keep_history_and_update_levels(
    session: Session, course: Course, other_course: Course
) -> None:
    comp = competency(session, course, "A")
    record(session, course, comp, "2", days_ago=2)
    record(session, course, comp, "4", days_ago=1)  # 2*.35 + 4*.65 = 3.30 Proficient
    first, second = services.evidence_history(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    )
    changes = services.correct_evidence(
        session,
        context_id=course.context_id,
        evidence_id=second.id,
        points=Decimal(3),
        note="Rubric re-read",
        changed_by_id=course.teacher_id,
    )
    # 2*.35 + 3*.65 = 0.70 + 1.95 = 2.65 Developing
    assert [(c.old_score, c.new_score, c.new_level_name) for c in changes] == [
        (Decimal("3.30"), Decimal("2.65"), "Developing")
    ]
    assert (second.points, second.level_name, second.note) == (D(3), "Proficient", "Rubric re-read")
    [revision] = second.revisions
    assert (revision.action, revision.old_points, revision.new_points) == (
        RevisionAction.CORRECTED,
        D(4),
        D(3),
    )
    assert revision.changed_by_id == course.teacher_id
    assert (
        services.correct_evidence(
            session,
            context_id=course.context_id,
            evidence_id=second.id,
            points=Decimal(3),
            changed_by_id=course.teacher_id,
        )
        == []
    )

    # Moving the 2 after the 3 changes the decaying average: 3*.35 + 2*.65 = 2.35.
    services.correct_evidence(
        session,
        context_id=course.context_id,
        evidence_id=first.id,
        observed_at=NOW,
        changed_by_id=course.teacher_id,
    )
    assert level(session, course, comp).score == Decimal("2.35")

    changes = services.withdraw_evidence(
        session, context_id=course.context_id, evidence_id=first.id, changed_by_id=course.teacher_id
    )
    assert [(c.new_score, c.new_level_name, c.is_mastered) for c in changes] == [
        (D(3), "Proficient", True)
    ]
    assert first.withdrawn_at is not None
    assert [r.action for r in first.revisions] == [
        RevisionAction.CORRECTED,
        RevisionAction.WITHDRAWN,
    ]
    assert level(session, course, comp).evidence_count == 1
    with pytest.raises(InvalidEvidenceError):
        services.withdraw_evidence(
            session,
            context_id=course.context_id,
            evidence_id=first.id,
            changed_by_id=course.teacher_id,
        )
    with pytest.raises(InvalidEvidenceError):
        services.correct_evidence(
            session,
            context_id=course.context_id,
            evidence_id=first.id,
            points=Decimal(1),
            changed_by_id=course.teacher_id,
        )
    # Withdrawing the last evidence leaves no score.
    changes = services.withdraw_evidence(
        session,
        context_id=course.context_id,
        evidence_id=second.id,
        changed_by_id=course.teacher_id,
    )
    assert [(c.new_score, c.new_level_name, c.is_mastered) for c in changes] == [
        (None, None, False)
    ]
    history = services.evidence_history(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    )
    assert len(history) == 2  # withdrawn evidence stays in the history
    # Another course cannot touch this evidence.
    for action in (services.withdraw_evidence, services.correct_evidence):
        with pytest.raises(EvidenceNotFoundError):
            action(
                session,
                context_id=other_course.context_id,
                evidence_id=second.id,
                changed_by_id=other_course.teacher_id,
            )


def test_self_assessment_counts_only_when_the_scale_says_so(
    session: Session, course: Course
) -> None:
    comp = competency(session, course, "A")
    assert record(session, course, comp, "4", source=EvidenceSource.SELF_ASSESSMENT) == []
    stored = level(session, course, comp)
    assert stored is None
    history = services.evidence_history(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    )
    assert [e.source for e in history] == [EvidenceSource.SELF_ASSESSMENT]

    changes = use_method(
        session, course, CalculationMethod.DECAYING_AVERAGE, counts_self_assessment=True
    )
    assert [(c.competency_id, c.new_level_name) for c in changes] == [(comp, "Advanced")]


def test_n_times_is_not_yet_until_reached(session: Session, course: Course) -> None:
    use_method(session, course, CalculationMethod.N_TIMES, n=2)
    comp = competency(session, course, "A")
    assert record(session, course, comp, "4", days_ago=2) == []
    stored = level(session, course, comp)
    assert (stored.score, stored.level_name, stored.evidence_count) == (None, None, 1)
    [change] = record(session, course, comp, "3", days_ago=1)
    assert (change.new_score, change.new_level_name, change.is_mastered) == (
        Decimal("3.50"),
        "Proficient",
        True,
    )


def test_scale_or_method_change_recomputes_every_level_of_the_course(
    session: Session, course: Course, other_course: Course
) -> None:
    a, b = competency(session, course, "A"), competency(session, course, "B")
    s1, s2, s3 = course.student_ids
    record(session, course, a, "4", [s1, s2], days_ago=3)
    record(session, course, a, "1", [s1], days_ago=2)  # s1: 4*.35 + 1*.65 = 2.05
    record(session, course, b, "2", [s3], days_ago=2)
    theirs = competency(session, other_course, "A")
    record(session, other_course, theirs, "1", other_course.student_ids[:1])

    changes = use_method(session, course, CalculationMethod.HIGHEST)
    assert [(c.person_id, c.competency_id, c.old_score, c.new_score) for c in changes] == [
        (s1, a, Decimal("2.05"), D(4))
    ]
    levels = [
        LevelSpec("Beginning", Decimal(0), "#B42318", False),
        LevelSpec("Approaching", Decimal(2), "#93370D", False),
        ("Meeting", Decimal(4), "#067647", True),  # a plain tuple works too
    ]
    changes = use_method(session, course, CalculationMethod.HIGHEST, levels=levels)
    summary = {(c.person_id, c.competency_id): (c.new_level_name, c.is_mastered) for c in changes}
    assert summary == {
        (s1, a): ("Meeting", True),
        (s2, a): ("Meeting", True),
        (s3, b): ("Approaching", False),
    }
    scale = get_or_create_scale(session, context_id=course.context_id)
    assert [lv.name for lv in scale.levels] == ["Beginning", "Approaching", "Meeting"]
    # Evidence keeps the level name it had when it was recorded.
    history = services.evidence_history(session, context_id=course.context_id, person_id=s3)
    assert [e.level_name for e in history] == ["Developing"]
    # The other course is untouched.
    assert level(session, other_course, theirs, other_course.student_ids[0]).level_name == (
        "Emerging"
    )
    grid = levels_for_course(session, context_id=course.context_id)
    assert {(row.person_id, row.competency_id) for row in grid} == {(s1, a), (s2, a), (s3, b)}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": CalculationMethod.DECAYING_AVERAGE, "weight": 40}, "weight"),
        ({"method": CalculationMethod.N_TIMES, "n": 11}, "n from"),
        ({"method": CalculationMethod.HIGHEST, "levels": DEFAULT_LEVELS[:1]}, "two levels"),
        (
            {"method": CalculationMethod.HIGHEST, "levels": DEFAULT_LEVELS[::-1]},
            "lowest to highest",
        ),
        (
            {
                "method": CalculationMethod.HIGHEST,
                "levels": [lv._replace(is_mastery=False) for lv in DEFAULT_LEVELS],
            },
            "exactly one",
        ),
        (
            {
                "method": CalculationMethod.HIGHEST,
                "levels": [DEFAULT_LEVELS[0]._replace(colour="red"), *DEFAULT_LEVELS[1:]],
            },
            "colour",
        ),
        (
            {
                "method": CalculationMethod.HIGHEST,
                "levels": [DEFAULT_LEVELS[0]._replace(name="proficient"), *DEFAULT_LEVELS[1:]],
            },
            "name",
        ),
    ],
)
def test_invalid_scales_are_refused(
    session: Session, course: Course, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidScaleError, match=message):
        update_scale(session, context_id=course.context_id, **kwargs)


def test_parent_rolls_up_its_children(session: Session, course: Course) -> None:
    parent = competency(session, course, "P")
    c1 = competency(session, course, "P.1", parent)
    c2 = competency(session, course, "P.2", parent)
    with pytest.raises(InvalidEvidenceError, match="sub-competencies"):
        record(session, course, parent, "3")

    changes = record(session, course, c1, "4")
    assert [(c.competency_id, c.new_score, c.is_mastered) for c in changes] == [
        (c1, D(4), True),
        (parent, D(4), False),  # P.2 is not mastered yet
    ]
    changes = record(session, course, c2, "3")
    assert [(c.competency_id, c.new_score, c.new_level_name, c.is_mastered) for c in changes] == [
        (c2, 3, "Proficient", True),
        (parent, Decimal("3.50"), "Proficient", True),
    ]
    assert mastered_competency_ids(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    ) == {parent, c1, c2}
    rolled = level(session, course, parent)
    assert (rolled.evidence_count, rolled.last_evidence_at) == (2, NOW)

    # A third sub-competency nobody has shown yet: recompute after the framework change.
    c3 = competency(session, course, "P.3", parent)
    changes = recompute_course(session, context_id=course.context_id)
    assert [(c.competency_id, c.new_score, c.is_mastered) for c in changes] == [
        (parent, Decimal("3.50"), False)
    ]
    competencies.archive_competency(session, context_id=course.context_id, competency_id=c3)
    changes = recompute_course(session, context_id=course.context_id)
    assert [(c.competency_id, c.is_mastered) for c in changes] == [(parent, True)]


def test_roll_up_reaches_every_ancestor(session: Session, course: Course) -> None:
    top = competency(session, course, "T")
    middle = competency(session, course, "T.1", top)
    leaf = competency(session, course, "T.1.a", middle)
    changes = record(session, course, leaf, "2")
    assert [(c.competency_id, c.new_level_name) for c in changes] == [
        (leaf, "Developing"),
        (middle, "Developing"),
        (top, "Developing"),
    ]


@pytest.fixture
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def listen(*args: Any) -> None:
        seen.append(args[2])

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", listen)
    yield seen
    event.remove(connection, "before_cursor_execute", listen)


def test_recompute_reads_the_course_evidence_in_one_query(
    session: Session, course: Course, statements: list[str]
) -> None:
    comps = [competency(session, course, f"C{i}") for i in range(4)]
    for comp in comps:
        record(session, course, comp, "3", course.student_ids)
    statements.clear()
    use_method(session, course, CalculationMethod.AVERAGE)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert sum("FROM evidence" in s for s in reads) == 1
    # The scale, its levels, the framework, the evidence, the stored levels: no N+1.
    assert len(reads) == 5
