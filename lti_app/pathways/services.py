"""Authoring pathways: create, change, order, archive and copy pathways and their steps.

Every function takes the course (context_id) and finds rows only inside it, so an id from
another course is simply not found. A step's options are authored in `options`; what both
share (titles, order, double clicks) is in `authoring`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import has_sub_competencies
from lti_app.db import lock_course, utcnow
from lti_app.pathways.authoring import clean_title, just_made, lock_parent, lock_row, reorder
from lti_app.pathways.editing import check_page, pathway_values, step_values
from lti_app.pathways.errors import (
    ParentCompetencyError,
    PathwayInUseError,
    PathwayNotFoundError,
    StepNotFoundError,
)
from lti_app.pathways.models import (
    Choice,
    Pathway,
    PathwayCompetency,
    Step,
    StepPrerequisite,
)
from lti_app.pathways.text import clean_html

# --- pathways ---------------------------------------------------------------------------------


def create_pathway(
    session: Session,
    *,
    context_id: int,
    title: str,
    description: str = "",
    competency_ids: Collection[int] = (),
    once: bool = False,
) -> Pathway:
    """Add a pathway at the end of the course's list, leading to the given competencies.

    :param once: return the same pathway created a moment ago (a double click on Create)
        instead of adding it again.
    """
    title, description = clean_title(title), clean_html(description)
    wanted = set(_check_competencies(session, context_id, competency_ids))
    if once:
        # Two Create clicks arriving together would each miss the other's new row.
        lock_course(session, context_id=context_id)
    for twin in just_made(
        session,
        once,
        Pathway,
        Pathway.context_id == context_id,
        Pathway.title == title,
        Pathway.description == description,
    ):
        if (
            set(pathway_competency_ids(session, context_id=context_id, pathway_id=twin.id))
            == wanted
        ):
            return twin
    last = session.scalar(
        select(func.max(Pathway.position)).where(Pathway.context_id == context_id)
    )
    pathway = Pathway(
        context_id=context_id,
        title=title,
        description=description,
        position=0 if last is None else last + 1,
    )
    session.add(pathway)
    session.flush()
    _write_links(
        session, PathwayCompetency, PathwayCompetency.pathway_id, pathway.id, have=(), wanted=wanted
    )
    return pathway


def update_pathway(
    session: Session,
    *,
    context_id: int,
    pathway_id: int,
    title: str,
    description: str,
    competency_ids: Collection[int],
    shown: str | None = None,
) -> Pathway:
    """Replace a pathway's title, description and the competencies it leads to.

    :param shown: what the editor's page showed (lti_app.page_edits); None: save as asked.
    :raises StalePageError: someone else changed it since, and this save would undo that.
    """
    pathway = lock_row(
        session,
        Pathway,
        context_id,
        pathway_id,
        PathwayNotFoundError("That pathway does not exist in this course."),
    )
    title, description = clean_title(title), clean_html(description)
    wanted = _check_competencies(session, context_id, competency_ids)
    have = _pathway_competency_ids(session, pathway.id)
    check_page(
        {"title": title, "description": description, "competency_ids": sorted(wanted)},
        pathway_values(pathway, have),
        shown,
    )
    pathway.title, pathway.description = title, description
    _write_links(
        session,
        PathwayCompetency,
        PathwayCompetency.pathway_id,
        pathway.id,
        have=have,
        wanted=wanted,
    )
    session.flush()
    return pathway


def get_pathway(session: Session, *, context_id: int, pathway_id: int) -> Pathway:
    """Return a pathway of the course, archived or not.

    :raises PathwayNotFoundError: no such pathway in this course.
    """
    pathway = session.scalars(
        select(Pathway).where(Pathway.id == pathway_id, Pathway.context_id == context_id)
    ).one_or_none()
    if pathway is None:
        raise PathwayNotFoundError("That pathway does not exist in this course.")
    return pathway


def list_pathways(
    session: Session, *, context_id: int, include_archived: bool = False
) -> list[Pathway]:
    """Return the course's pathways in their order."""
    query = select(Pathway).where(Pathway.context_id == context_id)
    if not include_archived:
        query = query.where(Pathway.archived_at.is_(None))
    return list(session.scalars(query.order_by(Pathway.position, Pathway.id)))


def pathway_competency_ids(session: Session, *, context_id: int, pathway_id: int) -> list[int]:
    """Return the ids of the competencies a pathway leads to."""
    get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    return _pathway_competency_ids(session, pathway_id)


def _pathway_competency_ids(session: Session, pathway_id: int) -> list[int]:
    return list(
        session.scalars(
            select(PathwayCompetency.competency_id)
            .where(PathwayCompetency.pathway_id == pathway_id)
            .order_by(PathwayCompetency.competency_id)
        )
    )


def reorder_pathways(session: Session, *, context_id: int, pathway_ids: Sequence[int]) -> None:
    """Put the named pathways first, in the given order; the others follow as they were."""
    rows = list_pathways(session, context_id=context_id, include_archived=True)
    reorder(rows, pathway_ids, PathwayNotFoundError("That pathway does not exist in this course."))
    session.flush()


def archive_pathway(session: Session, *, context_id: int, pathway_id: int) -> Pathway:
    """Hide a pathway from students, keeping their choices and work."""
    pathway = get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    pathway.archived_at = pathway.archived_at or utcnow()
    session.flush()
    return pathway


def restore_pathway(session: Session, *, context_id: int, pathway_id: int) -> Pathway:
    """Show an archived pathway again."""
    pathway = get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    pathway.archived_at = None
    session.flush()
    return pathway


def delete_pathway(session: Session, *, context_id: int, pathway_id: int) -> None:
    """Delete a pathway nobody has chosen from yet.

    :raises PathwayInUseError: students have choices in it; archive it instead.
    """
    pathway = get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    step_ids = select(Step.id).where(Step.pathway_id == pathway.id)
    if session.scalar(select(exists().where(Choice.step_id.in_(step_ids)))):
        raise PathwayInUseError("Students have chosen options in this pathway; archive it instead.")
    session.delete(pathway)
    session.flush()


# --- steps ------------------------------------------------------------------------------------


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
    wanted = set(_check_competencies(session, context_id, prerequisite_ids))
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
    _write_links(
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
    wanted = _check_competencies(session, context_id, prerequisite_ids)
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
    _write_links(
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
    if session.scalar(select(exists().where(Choice.step_id == step.id))):
        raise PathwayInUseError("Students have chosen options in this step; archive it instead.")
    session.delete(step)
    session.flush()


# --- helpers ----------------------------------------------------------------------------------


def _check_competencies(session: Session, context_id: int, ids: Iterable[int]) -> list[int]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = set(
        session.scalars(
            select(Competency.id).where(
                Competency.id.in_(wanted), Competency.context_id == context_id
            )
        )
    )
    if len(found) != len(wanted):
        raise ValueError("Some of those competencies are not part of this course.")
    return wanted


def _check_assessed(session: Session, context_id: int, competency_id: int | None) -> None:
    """Refuse, as a step's own competency, one that evidence cannot go on: marking the step's
    work done with a level records that level on it."""
    if competency_id is None:
        return
    _check_competencies(session, context_id, [competency_id])
    if has_sub_competencies(session, context_id=context_id, competency_id=competency_id):
        parent = session.get_one(Competency, competency_id)
        raise ParentCompetencyError(
            f"“{parent.code} {parent.title}” has sub-competencies, so it cannot be the "
            "competency this step's work is evidence for: levels are recorded on its "
            "sub-competencies. Choose one of them, or the pathway's competencies."
        )


def _write_links(
    session: Session,
    link: type[PathwayCompetency] | type[StepPrerequisite],
    owner: InstrumentedAttribute[int],
    owner_id: int,
    *,
    have: Collection[int],
    wanted: Collection[int],
) -> None:
    """Make a pathway's competencies (or a step's prerequisites) `wanted`, from `have`, both
    already read and checked by the caller. Only the difference is written: rows that stay
    are not deleted and inserted again (two saves at once would collide on them)."""
    gone = set(have) - set(wanted)
    if gone:
        session.execute(delete(link).where(owner == owner_id, link.competency_id.in_(gone)))
    session.add_all(
        link(**{owner.key: owner_id, "competency_id": c}) for c in sorted(set(wanted) - set(have))
    )
    session.flush()
