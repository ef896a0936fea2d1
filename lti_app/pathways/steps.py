"""Authoring a pathway's steps: create, change, order, archive and delete them.

Every function takes the course (context_id) and finds rows only inside it, so an id from
another course is simply not found. `services` re-exports these, its callers' one entry point.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import has_sub_competencies
from lti_app.db import utcnow
from lti_app.pathways.authoring import (
    check_competencies,
    clean_title,
    get_pathway,
    just_made,
    lock_parent,
    lock_row,
    reorder,
    write_links,
)
from lti_app.pathways.editing import check_page, step_values
from lti_app.pathways.errors import (
    ParentCompetencyError,
    PathwayInUseError,
    PathwayNotFoundError,
    StepNotFoundError,
)
from lti_app.pathways.models import Attempt, Choice, Pathway, Step, StepPrerequisite
from lti_app.pathways.text import clean_html


def create_step(
    session: Session,
    *,
    context_id: int,
    pathway_id: int,
    title: str,
    description: str = "",
    competency_id: int | None = None,
    prerequisite_ids: Collection[int] = (),
    once: bool = False,
) -> Step:
    """Add a step at the end of a pathway.

    :param competency_id: the competency this step's work is evidence for; None means the
        pathway's competencies (see complete_choices_for_competency).
    :param prerequisite_ids: competencies to master before the step unlocks.
    :param once: return the same step added a moment ago (a double click on Add step) instead
        of adding it again.
    :raises ParentCompetencyError: the step's competency has sub-competencies.
    """
    lock_parent(session, Pathway, context_id, pathway_id, PathwayNotFoundError)
    _check_assessed(session, context_id, competency_id)
    title, description = clean_title(title), clean_html(description)
    wanted = set(check_competencies(session, context_id, prerequisite_ids))
    for twin in just_made(
        session,
        once,
        Step,
        Step.pathway_id == pathway_id,
        Step.title == title,
        Step.description == description,
        Step.competency_id.is_(None)
        if competency_id is None
        else Step.competency_id == competency_id,
    ):
        if set(step_prerequisite_ids(session, context_id=context_id, step_id=twin.id)) == wanted:
            return twin
    last = session.scalar(select(func.max(Step.position)).where(Step.pathway_id == pathway_id))
    step = Step(
        context_id=context_id,
        pathway_id=pathway_id,
        title=title,
        description=description,
        competency_id=competency_id,
        position=0 if last is None else last + 1,
    )
    session.add(step)
    session.flush()
    write_links(
        session, StepPrerequisite, StepPrerequisite.step_id, step.id, have=(), wanted=wanted
    )
    return step


def update_step(
    session: Session,
    *,
    context_id: int,
    step_id: int,
    title: str,
    description: str,
    competency_id: int | None,
    prerequisite_ids: Collection[int],
    shown: str | None = None,
) -> Step:
    """Replace a step's title, description, assessed competency and prerequisites.

    :param shown: what the editor's page showed (lti_app.page_edits); None: save as asked.
    :raises ParentCompetencyError: the assessed competency has sub-competencies.
    :raises StalePageError: someone else changed it since, and this save would undo that.
    """
    step = lock_row(
        session,
        Step,
        context_id,
        step_id,
        StepNotFoundError("That step does not exist in this course."),
    )
    _check_assessed(session, context_id, competency_id)
    title, description = clean_title(title), clean_html(description)
    wanted = check_competencies(session, context_id, prerequisite_ids)
    have = _step_prerequisite_ids(session, step.id)
    check_page(
        {
            "title": title,
            "description": description,
            "competency_id": competency_id,
            "prerequisite_ids": sorted(wanted),
        },
        step_values(step, have),
        shown,
    )
    step.title, step.description, step.competency_id = title, description, competency_id
    write_links(
        session, StepPrerequisite, StepPrerequisite.step_id, step.id, have=have, wanted=wanted
    )
    session.flush()
    return step


def get_step(session: Session, *, context_id: int, step_id: int) -> Step:
    """Return a step of the course.

    :raises StepNotFoundError: no such step in this course.
    """
    step = session.scalars(
        select(Step).where(Step.id == step_id, Step.context_id == context_id)
    ).one_or_none()
    if step is None:
        raise StepNotFoundError("That step does not exist in this course.")
    return step


def list_steps(
    session: Session, *, context_id: int, pathway_id: int, include_archived: bool = False
) -> list[Step]:
    """Return a pathway's steps in their order."""
    query = select(Step).where(Step.context_id == context_id, Step.pathway_id == pathway_id)
    if not include_archived:
        query = query.where(Step.archived_at.is_(None))
    return list(session.scalars(query.order_by(Step.position, Step.id)))


def step_prerequisite_ids(session: Session, *, context_id: int, step_id: int) -> list[int]:
    """Return the ids of the competencies a step waits for."""
    get_step(session, context_id=context_id, step_id=step_id)
    return _step_prerequisite_ids(session, step_id)


def _step_prerequisite_ids(session: Session, step_id: int) -> list[int]:
    return list(
        session.scalars(
            select(StepPrerequisite.competency_id)
            .where(StepPrerequisite.step_id == step_id)
            .order_by(StepPrerequisite.competency_id)
        )
    )


def reorder_steps(
    session: Session, *, context_id: int, pathway_id: int, step_ids: Sequence[int]
) -> None:
    """Put the named steps first, in the given order; the others follow as they were."""
    get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    rows = list_steps(session, context_id=context_id, pathway_id=pathway_id, include_archived=True)
    reorder(rows, step_ids, StepNotFoundError("That step is not in this pathway."))
    session.flush()


def archive_step(session: Session, *, context_id: int, step_id: int) -> Step:
    """Hide a step from students, keeping their choices and work."""
    step = get_step(session, context_id=context_id, step_id=step_id)
    step.archived_at = step.archived_at or utcnow()
    session.flush()
    return step


def restore_step(session: Session, *, context_id: int, step_id: int) -> Step:
    """Show an archived step again."""
    step = get_step(session, context_id=context_id, step_id=step_id)
    step.archived_at = None
    session.flush()
    return step


def delete_step(session: Session, *, context_id: int, step_id: int) -> None:
    """Delete a step nobody has chosen from yet.

    :raises PathwayInUseError: students have choices in it; archive it instead.
    """
    step = get_step(session, context_id=context_id, step_id=step_id)
    # An earlier try (pathways.attempts) counts too: its student's work on it stays.
    if session.scalar(select(exists().where(Choice.step_id == step.id))) or session.scalar(
        select(exists().where(Attempt.step_id == step.id))
    ):
        raise PathwayInUseError("Students have chosen options in this step; archive it instead.")
    session.delete(step)
    session.flush()


def _check_assessed(session: Session, context_id: int, competency_id: int | None) -> None:
    """Refuse, as a step's own competency, one that evidence cannot go on: marking the step's
    work done with a level records that level on it."""
    if competency_id is None:
        return
    check_competencies(session, context_id, [competency_id])
    if has_sub_competencies(session, context_id=context_id, competency_id=competency_id):
        parent = session.get_one(Competency, competency_id)
        raise ParentCompetencyError(
            f"“{parent.code} {parent.title}” has sub-competencies, so it cannot be the "
            "competency this step's work is evidence for: levels are recorded on its "
            "sub-competencies. Choose one of them, or the pathway's competencies."
        )
