"""Archiving a competency puts it away without erasing grades: its LMS gradebook column keeps
the students' scores, and the Gradebook page keeps listing the column while it is on, so the
teacher can see it and turn it off."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import func, select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo.seed import TEACHER
from lti_app.grades import services
from lti_app.grades.columns import set_gradebook_competencies
from lti_app.grades.models import LineItem, ScoreOutbox
from lti_app.mastery.models import EvidenceSource, StudentCompetencyLevel
from lti_app.mastery.services import record_evidence
from tests.conftest import LtiActions
from tests.courses.frames import Frame, frame
from tests.grades.conftest import GradeCourse


def _lms_scores(course: GradeCourse, competency_id: int) -> dict[str, object]:
    """What the LMS holds in a competency's column: scoreGiven per student."""
    item = course.line_items()[competency_id]
    lms_id = course.lms_item_ids()[item.url]
    return {
        sub: record.body.get("scoreGiven")
        for sub, record in course.lms.platform.state.results(lms_id).items()
    }


def _teacher(lti: LtiActions, course: GradeCourse) -> Frame:
    return frame(lti.launch(TEACHER.user_id, context_id=course.lms_context_id), lti.tool.url)


def _parent_with_two_parts_at_proficient(
    course: GradeCourse, db: Database
) -> tuple[int, list[int]]:
    """A parent and its two parts, all three sent to the gradebook, every student at 3 on both
    parts (so at Proficient on the parent)."""
    with db.begin() as s:
        parent = create_competency(s, context_id=course.context_id, code="P", title="Parent").id
        parts = [
            create_competency(
                s,
                context_id=course.context_id,
                code=f"P.{i}",
                title=f"Part {i}",
                parent_id=parent,
            ).id
            for i in (1, 2)
        ]
        set_gradebook_competencies(s, context_id=course.context_id, competency_ids=[parent, *parts])
        for part in parts:
            changes = record_evidence(
                s,
                context_id=course.context_id,
                competency_id=part,
                student_ids=list(course.students.values()),
                points=Decimal(3),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=course.teacher_id,
            )
            services.queue_scores(s, changes)
    return parent, parts


def test_archiving_a_parent_with_its_parts_keeps_the_students_scores_in_the_lms(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=0)
    parent, parts = _parent_with_two_parts_at_proficient(course, db)
    worker = course.worker()
    worker.sync_line_items()
    course.drain_until_settled(worker)
    before = _lms_scores(course, parent)
    assert len(before) == 2
    assert set(before.values()) == {3.0}
    teacher = _teacher(lti, course)

    shown = teacher.follow(teacher.post(f"/competencies/{parent}/archive")).text
    assert "is archived" in shown
    assert "gradebook column, if it has one, keeps their scores" in shown
    course.drain_until_settled(worker)
    assert _lms_scores(course, parent) == before, "archiving emptied the parent's LMS column"
    assert all(set(_lms_scores(course, part).values()) == {3.0} for part in parts)
    with db.session_factory() as s:
        levels = s.scalars(
            select(StudentCompetencyLevel.level_name).where(
                StudentCompetencyLevel.context_id == course.context_id,
                StudentCompetencyLevel.competency_id == parent,
            )
        ).all()
    assert levels == ["Proficient", "Proficient"], "the archived parent lost its roll-up"

    # Back in the framework, the branch is as it was: still nothing to send or clear.
    shown = teacher.follow(teacher.post(f"/competencies/{parent}/unarchive")).text
    assert "back in the framework" in shown
    course.drain_until_settled(worker)
    assert _lms_scores(course, parent) == before


def _outbox_rows(db: Database, course: GradeCourse, competency_id: int) -> int:
    with db.session_factory() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(ScoreOutbox)
                .where(
                    ScoreOutbox.context_id == course.context_id,
                    ScoreOutbox.competency_id == competency_id,
                )
            )
            or 0
        )


def _is_enabled(db: Database, course: GradeCourse, competency_id: int) -> bool:
    with db.session_factory() as s:
        return s.scalars(
            select(LineItem.is_enabled).where(
                LineItem.context_id == course.context_id,
                LineItem.competency_id == competency_id,
            )
        ).one()


def test_an_archived_competencys_column_stays_listed_until_the_teacher_turns_it_off(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=2)
    keep, retire = course.competency_ids
    course.record(3, competency=0)
    course.record(3, competency=1)
    worker = course.worker()
    worker.sync_line_items()
    course.drain_until_settled(worker)
    teacher = _teacher(lti, course)
    assert teacher.post(f"/competencies/{retire}/archive").status_code == 303

    page = teacher.get("/grades/").text
    row = page[page.index(f'id="competency-{retire}"') :].split("</div>", 1)[0]
    assert "checked" in row
    assert "archived" in row
    assert "untick" in page

    # Saving the page as it stands changes nothing.
    saved = teacher.post("/grades/columns", {"competency": [str(keep), str(retire)]})
    assert saved.status_code == 303
    assert _is_enabled(db, course, retire)

    # Unticked, it goes off: a later display change sends nothing to it.
    saved = teacher.post("/grades/columns", {"competency": [str(keep)]})
    assert saved.status_code == 303
    assert not _is_enabled(db, course, retire)
    rows_before = _outbox_rows(db, course, retire)
    teacher.follow(teacher.post("/grades/display", {"display": "percent"}))
    assert _outbox_rows(db, course, retire) == rows_before
    assert _outbox_rows(db, course, keep) > 0

    # Off and archived, the page no longer offers it, and naming it cannot turn it on.
    assert f'id="competency-{retire}"' not in teacher.get("/grades/").text
    teacher.post("/grades/columns", {"competency": [str(keep), str(retire)]})
    assert not _is_enabled(db, course, retire)
