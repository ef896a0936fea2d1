"""Copying a course's grading set-up into another course the teacher teaches.

With its framework, a new term wants last term's grading: the mastery scale and calculation
method, how levels show in the LMS gradebook, and which competencies have a column there.
Students' data (evidence, levels, choices, scores) is never copied.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from lti_app.courses.recording import queue_scores
from lti_app.grades.columns import set_display, set_gradebook_competencies
from lti_app.grades.gradebook import get_gradebook
from lti_app.grades.models import LineItem
from lti_app.mastery.calculation import DEFAULT_N, DEFAULT_WEIGHT, CalculationMethod
from lti_app.mastery.models import MasteryScale
from lti_app.mastery.scales import DEFAULT_LEVELS, update_scale
from lti_app.mastery.services import students_with_evidence


def has_evidence(session: Session, *, context_id: int) -> bool:
    """Whether any student of the course has evidence: grading copied then changes levels."""
    return bool(students_with_evidence(session, context_id=context_id))


def copy_grading(
    session: Session,
    *,
    from_context_id: int,
    to_context_id: int,
    competency_id_map: Mapping[int, int],
) -> None:
    """Give the target course the source's scale, calculation, gradebook display and columns.

    `competency_id_map` (source id to target id, from the framework copy) says which of the
    target's competencies get a column; columns the target already sends stay. The caller
    checks that the person may read the source course. Levels the change moves are queued.
    """
    # Read, never made: a course still on the default scale has no row of its own.
    source = session.scalar(
        select(MasteryScale)
        .where(MasteryScale.context_id == from_context_id)
        .options(selectinload(MasteryScale.levels))
    )
    if source is None:
        changes = update_scale(
            session,
            context_id=to_context_id,
            method=CalculationMethod.DECAYING_AVERAGE,
            weight=DEFAULT_WEIGHT,
            n=DEFAULT_N,
            counts_self_assessment=False,
            levels=[(s.name, s.points, s.colour, s.is_mastery) for s in DEFAULT_LEVELS],
        )
    else:
        changes = update_scale(
            session,
            context_id=to_context_id,
            method=source.method,
            weight=source.weight,
            n=source.n,
            counts_self_assessment=source.counts_self_assessment,
            levels=[(lv.name, lv.points, lv.colour, lv.is_mastery) for lv in source.levels],
        )
    queue_scores(session, changes)
    gradebook = get_gradebook(session, context_id=from_context_id)
    if gradebook is not None:
        set_display(
            session,
            context_id=to_context_id,
            display=gradebook.display,
            conversion=dict(gradebook.conversion or {}),
        )
    sent = session.scalars(
        select(LineItem.competency_id).where(
            LineItem.context_id == from_context_id, LineItem.is_enabled.is_(True)
        )
    )
    wanted = {competency_id_map[c] for c in sent if c in competency_id_map}
    if not wanted:
        return
    already = session.scalars(
        select(LineItem.competency_id).where(
            LineItem.context_id == to_context_id, LineItem.is_enabled.is_(True)
        )
    )
    set_gradebook_competencies(
        session, context_id=to_context_id, competency_ids=wanted | set(already)
    )
