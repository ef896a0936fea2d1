"""Read a course's competency framework: look competencies up, and list them as a tree or in
tree order with their parents and prerequisites. Every query is scoped by the course.

Changing the framework is in services.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.errors import CompetencyNotFoundError
from lti_app.competencies.models import Competency, CompetencyPrerequisite


@dataclass
class CompetencyNode:
    """A competency with its children, in order, for rendering the framework as a tree."""

    competency: Competency
    depth: int
    children: list[CompetencyNode] = field(default_factory=list)


def get_competency(session: Session, *, context_id: int, competency_id: int) -> Competency:
    """Return the course's competency, or raise CompetencyNotFoundError (also for other courses)."""
    competency = session.scalar(
        select(Competency).where(
            Competency.id == competency_id, Competency.context_id == context_id
        )
    )
    if competency is None:
        raise CompetencyNotFoundError(competency_id)
    return competency


def get_competency_by_code(session: Session, *, context_id: int, code: str) -> Competency:
    """Return the course's competency with this code, or raise CompetencyNotFoundError."""
    competency = session.scalar(
        select(Competency).where(Competency.context_id == context_id, Competency.code == code)
    )
    if competency is None:
        raise CompetencyNotFoundError(code)
    return competency


def competency_tree(
    session: Session, *, context_id: int, include_archived: bool = False
) -> list[CompetencyNode]:
    """Return the course's top-level competencies with their descendants, siblings in order."""
    query = select(Competency).where(Competency.context_id == context_id)
    if not include_archived:
        query = query.where(Competency.archived_at.is_(None))
    competencies = session.scalars(query.order_by(Competency.position, Competency.id)).all()
    children: dict[int | None, list[Competency]] = defaultdict(list)
    ids = {c.id for c in competencies}
    for competency in competencies:
        # A child whose parent is hidden (archived) would otherwise vanish from the tree.
        parent = competency.parent_id if competency.parent_id in ids else None
        children[parent].append(competency)

    def build(parent_id: int | None, depth: int) -> list[CompetencyNode]:
        return [
            CompetencyNode(competency=c, depth=depth, children=build(c.id, depth + 1))
            for c in children[parent_id]
        ]

    return build(None, 0)


def list_competencies(
    session: Session, *, context_id: int, include_archived: bool = False
) -> list[Competency]:
    """Return the course's competencies in tree order: each parent before its children."""
    ordered: list[Competency] = []

    def walk(nodes: Iterable[CompetencyNode]) -> None:
        for node in nodes:
            ordered.append(node.competency)
            walk(node.children)

    walk(competency_tree(session, context_id=context_id, include_archived=include_archived))
    return ordered


def prerequisite_map(session: Session, *, context_id: int) -> dict[int, set[int]]:
    """Return, for each competency of the course that has any, the ids of its prerequisites."""
    result: dict[int, set[int]] = defaultdict(set)
    rows = session.execute(
        select(CompetencyPrerequisite.competency_id, CompetencyPrerequisite.prerequisite_id).where(
            CompetencyPrerequisite.context_id == context_id
        )
    )
    for competency_id, prerequisite_id in rows:
        result[competency_id].add(prerequisite_id)
    return dict(result)


def parent_map(session: Session, *, context_id: int) -> dict[int, int | None]:
    """Return every competency id of the course with its parent id."""
    rows = session.execute(
        select(Competency.id, Competency.parent_id).where(Competency.context_id == context_id)
    )
    result: dict[int, int | None] = {}
    for competency_id, parent_id in rows:
        result[competency_id] = parent_id
    return result


def has_sub_competencies(session: Session, *, context_id: int, competency_id: int) -> bool:
    """Whether the competency has a part that is not archived: its level is then rolled up
    from its parts, and evidence cannot go on it."""
    child = session.scalar(
        select(Competency.id)
        .where(
            Competency.context_id == context_id,
            Competency.parent_id == competency_id,
            Competency.archived_at.is_(None),
        )
        .limit(1)
    )
    return child is not None
