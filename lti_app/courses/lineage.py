"""Which competency or pathway of a course is the copy of another course's.

An LMS that copies a course (Canvas's "Copy this course", Moodle's backup and restore) copies
Pathways' links with their custom parameters, and Canvas copies the gradebook's columns with
their resourceId, as they were: they keep the ids of last term's competencies and pathways
(`pathways_item` = `competency-<id>`, `pathway_id`, `pathways-competency-<id>`). Pathways'
own copy records where each copied competency and pathway came from (`copied_from_id`), so
the new course reads such an id as its own copy of it, and never as the other course's.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.pathways.models import Pathway
from lti_app.tool.models import Context

MAX_GENERATIONS = 20
"""How many copies of copies are followed: one a term makes twenty a decade of terms."""

Copyable = type[Competency] | type[Pathway]


def own_or_copy(session: Session, model: Copyable, *, context_id: int, item_id: int) -> int | None:
    """`item_id` when it is this course's, else this course's copy of it (or of a copy of it),
    else None: an id of another course, or of another platform, names nothing here."""
    owner = session.execute(
        select(model.context_id, Context.platform_id)
        .join(Context, Context.id == model.context_id)
        .where(model.id == item_id)
    ).first()
    if owner is None:
        return None
    if owner.context_id == context_id:
        return item_id
    platform_id = session.scalar(select(Context.platform_id).where(Context.id == context_id))
    if owner.platform_id != platform_id:
        return None
    seen = frontier = {item_id}
    for _ in range(MAX_GENERATIONS):
        rows = session.execute(
            select(model.id, model.context_id, model.archived_at).where(
                model.copied_from_id.in_(frontier)
            )
        ).all()
        here = [row for row in rows if row.context_id == context_id]
        if here:
            # Two copies of one only when the teacher changed a code and copied again: the
            # one still in use, then the first.
            first = min(here, key=lambda row: (row.archived_at is not None, row.id))
            return int(first.id)
        frontier = {row.id for row in rows} - seen
        if not frontier:
            return None
        seen = seen | frontier
    return None


def copied_from_ids(session: Session, model: Copyable, *, item_id: int) -> list[int]:
    """What this competency or pathway was copied from, then what that was copied from, and so
    on (nearest first; only on the same platform, the only one an LMS copies within)."""
    found: list[int] = []
    current = item_id
    platform_id = session.scalar(
        select(Context.platform_id)
        .join(model, model.context_id == Context.id)
        .where(model.id == item_id)
    )
    for _ in range(MAX_GENERATIONS):
        source_id = session.scalar(select(model.copied_from_id).where(model.id == current))
        if source_id is None or source_id == item_id or source_id in found:
            break
        source_platform = session.scalar(
            select(Context.platform_id)
            .join(model, model.context_id == Context.id)
            .where(model.id == source_id)
        )
        if source_platform != platform_id:
            break
        found.append(source_id)
        current = source_id
    return found
