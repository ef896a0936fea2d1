"""The students' stored levels (StudentCompetencyLevel), read for pages and reports.

`mastery.rollup` writes them, in the flush that changes evidence or the scale.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.mastery.models import StudentCompetencyLevel


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
