"""The students' stored levels (StudentCompetencyLevel), read for pages and reports, and the
teacher's latest word on a competency.

`mastery.rollup` writes them, in the flush that changes evidence or the scale.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.mastery.models import (
    IN_ORDER_OBSERVED,
    Evidence,
    EvidenceSource,
    StudentCompetencyLevel,
)


def current_levels(
    session: Session, *, context_id: int, person_id: int
) -> dict[int, StudentCompetencyLevel]:
    """Return the student's stored levels in the course, by competency id."""
    rows = session.scalars(
        select(StudentCompetencyLevel).where(
            StudentCompetencyLevel.context_id == context_id,
            StudentCompetencyLevel.person_id == person_id,
        )
    )
    return {row.competency_id: row for row in rows}


def mastered_competency_ids(session: Session, *, context_id: int, person_id: int) -> set[int]:
    """Return the ids of the competencies the student has mastered in the course."""
    return set(
        session.scalars(
            select(StudentCompetencyLevel.competency_id).where(
                StudentCompetencyLevel.context_id == context_id,
                StudentCompetencyLevel.person_id == person_id,
                StudentCompetencyLevel.is_mastered.is_(True),
            )
        )
    )


def levels_for_course(session: Session, *, context_id: int) -> list[StudentCompetencyLevel]:
    """Return every stored level of the course in one query (the dashboard's grid)."""
    return list(
        session.scalars(
            select(StudentCompetencyLevel)
            .where(StudentCompetencyLevel.context_id == context_id)
            .order_by(StudentCompetencyLevel.person_id, StudentCompetencyLevel.competency_id)
        )
    )


def mastered_counts(session: Session, *, context_id: int) -> dict[int, int]:
    """How many active competencies each student has mastered, counted in the database."""
    rows = session.execute(
        select(StudentCompetencyLevel.person_id, func.count())
        .join(Competency, Competency.id == StudentCompetencyLevel.competency_id)
        .where(
            StudentCompetencyLevel.context_id == context_id,
            StudentCompetencyLevel.is_mastered.is_(True),
            Competency.archived_at.is_(None),
        )
        .group_by(StudentCompetencyLevel.person_id)
    )
    return {int(person_id): int(count) for person_id, count in rows}


def latest_teacher_notes(
    session: Session, *, context_id: int, person_id: int, competency_ids: Collection[int]
) -> dict[int, Evidence]:
    """The student's latest evidence with a note from the teacher on each competency, by id.

    Latest as mastery reads it (the day observed first); a withdrawn observation or the
    student's own self-assessment is not the teacher's word.
    """
    if not competency_ids:
        return {}
    rows = session.scalars(
        select(Evidence)
        .where(
            Evidence.context_id == context_id,
            Evidence.person_id == person_id,
            Evidence.competency_id.in_(list(competency_ids)),
            Evidence.withdrawn_at.is_(None),
            Evidence.source != EvidenceSource.SELF_ASSESSMENT,
            Evidence.note != "",
        )
        .order_by(*(column.desc() for column in IN_ORDER_OBSERVED))
    )
    latest: dict[int, Evidence] = {}
    for evidence in rows:
        latest.setdefault(evidence.competency_id, evidence)
    return latest
