"""Authoring pathways: create, change, order, archive and delete them; with their steps
(authored in `steps`, re-exported here so callers keep one entry point).

Every function takes the course (context_id) and finds rows only inside it, so an id from
another course is simply not found. A step's options are authored in `options`; what all
share (titles, order, double clicks, linked competencies) is in `authoring`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from lti_app.db import lock_course, utcnow
from lti_app.pathways.authoring import (
    check_competencies,
    clean_title,
    get_pathway,
    just_made,
    lock_row,
    reorder,
    write_links,
)
from lti_app.pathways.editing import check_page, pathway_values
from lti_app.pathways.errors import PathwayInUseError, PathwayNotFoundError
from lti_app.pathways.models import Attempt, Choice, Pathway, PathwayCompetency, Step
from lti_app.pathways.steps import (
    archive_step,
    create_step,
    delete_step,
    get_step,
    list_steps,
    reorder_steps,
    restore_step,
    step_prerequisite_ids,
    update_step,
)
from lti_app.pathways.text import clean_html

__all__ = [
    "archive_pathway",
    "archive_step",
    "create_pathway",
    "create_step",
    "delete_pathway",
    "delete_step",
    "get_pathway",
    "get_step",
    "list_pathways",
    "list_steps",
    "pathway_competency_ids",
    "reorder_pathways",
    "reorder_steps",
    "restore_pathway",
    "restore_step",
    "step_prerequisite_ids",
    "update_pathway",
    "update_step",
]

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
    wanted = set(check_competencies(session, context_id, competency_ids))
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
    write_links(
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
    wanted = check_competencies(session, context_id, competency_ids)
    have = _pathway_competency_ids(session, pathway.id)
    check_page(
        {"title": title, "description": description, "competency_ids": sorted(wanted)},
        pathway_values(pathway, have),
        shown,
    )
    pathway.title, pathway.description = title, description
    write_links(
        session,
        PathwayCompetency,
        PathwayCompetency.pathway_id,
        pathway.id,
        have=have,
        wanted=wanted,
    )
    session.flush()
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
    # An earlier try outlives a withdrawn choice: it is the student's work all the same.
    chosen = exists().where(Choice.step_id.in_(step_ids))
    tried = exists().where(Attempt.step_id.in_(step_ids))
    if session.scalar(select(chosen | tried)):
        raise PathwayInUseError("Students have chosen options in this pathway; archive it instead.")
    session.delete(pathway)
    session.flush()
