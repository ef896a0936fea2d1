"""Propose groups of the course's active students by their level on a competency or their
place on a step; the grouping itself is insights.grouping's pure functions.

Everything takes a database session and the course's context id, and never imports Flask.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.queries import get_competency
from lti_app.insights.dashboard import scale_levels
from lti_app.insights.grouping import (
    ProposedGroup,
    StudentAtLevel,
    StudentAtStep,
    propose_by_competency,
    propose_by_step,
    step_progress,
)
from lti_app.insights.groups import GroupNotFoundError
from lti_app.insights.steps import list_steps
from lti_app.mastery.levels import levels_for_course
from lti_app.pathways.models import Choice, StepPrerequisite
from lti_app.pathways.unlocking import class_unlock_states
from lti_app.roster.services import Student, list_students


def _active_students(session: Session, context_id: int) -> list[Student]:
    return list_students(session, context_id=context_id)


def propose_for_competency(
    session: Session, *, context_id: int, competency_id: int
) -> list[ProposedGroup]:
    """Propose groups of the course's active students by their level on one competency."""
    competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    levels = scale_levels(session, context_id=context_id)
    stored = {
        row.person_id: row
        for row in levels_for_course(session, context_id=context_id)
        if row.competency_id == competency_id
    }
    students = []
    for student in _active_students(session, context_id):
        row = stored.get(student.person_id)
        if row is None:
            students.append(StudentAtLevel(student.person_id, student.name, None))
            continue
        students.append(
            StudentAtLevel(
                student.person_id,
                student.name,
                row.level_points if row.level_name is not None else None,
                is_mastered=row.is_mastered,
                has_evidence=row.evidence_count > 0,
            )
        )
    return propose_by_competency(
        students,
        levels=levels,
        code=competency.code or competency.title,
        next_step_title=_next_step_title(session, context_id, competency_id),
    )


def _next_step_title(session: Session, context_id: int, competency_id: int) -> str | None:
    """The first open step that waits for this competency: where mastering it leads."""
    waiting = set(
        session.scalars(
            select(StepPrerequisite.step_id).where(StepPrerequisite.competency_id == competency_id)
        )
    )
    for ref in list_steps(session, context_id=context_id):
        if ref.id in waiting:
            return f"step {ref.number}: {ref.title}"
    return None


def propose_for_step(session: Session, *, context_id: int, step_id: int) -> list[ProposedGroup]:
    """Propose groups of the course's active students by their place on one step."""
    ref = next((s for s in list_steps(session, context_id=context_id) if s.id == step_id), None)
    if ref is None:
        raise GroupNotFoundError("That step is not in this course.")
    mastered = {
        (row.person_id, row.competency_id)
        for row in levels_for_course(session, context_id=context_id)
        if row.is_mastered
    }
    statuses = dict(
        session.execute(
            select(Choice.person_id, Choice.status).where(
                Choice.context_id == context_id, Choice.step_id == step_id
            )
        ).all()
    )
    active = _active_students(session, context_id)
    # The rule the student's own pages read, for the whole class in two queries at most.
    states = class_unlock_states(
        session,
        context_id=context_id,
        pairs=[(s.person_id, step_id) for s in active],
        mastered=mastered,
    )
    students: list[StudentAtStep] = []
    for student in active:
        state = states[student.person_id, step_id]
        status = statuses.get(student.person_id)
        progress = step_progress(
            choice_status=status.value if status else None, is_unlocked=state.is_unlocked
        )
        missing = tuple(c.code or c.title for c in state.missing)
        students.append(StudentAtStep(student.person_id, student.name, progress, missing))
    return propose_by_step(students, step_title=ref.title, step_number=ref.number)
