"""Which steps no student can ever open: the course's pathways worked through as students
would, each step opening once what it waits for can be mastered somewhere."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.pathways.models import Option, Pathway, PathwayCompetency, Step
from lti_app.pathways.services import get_pathway
from lti_app.pathways.unlock import CompetencyRef
from lti_app.pathways.unlocking import step_rules


def stuck_steps(
    session: Session, *, context_id: int, pathway_id: int
) -> list[tuple[Step, list[CompetencyRef]]]:
    """Find the pathway's steps no student can ever open by working through the course's
    pathways, with what they wait for: each waits, directly or through other steps, for a
    competency only such steps teach.

    The opening runs over every open pathway of the course, as students work through them all:
    two pathways waiting on each other (one's step teaches what the other's waits for, and the
    other way round) lock both, while a competency no step teaches counts as reachable
    (evidence comes from elsewhere). Archived steps and archived prerequisites count for
    nothing, as for the students. A step with no option on offer teaches nothing, since nobody
    new can do it; a competency with sub-competencies is reachable only once all of them are,
    as it is mastered through them. Five queries, however big the course.
    """
    get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    steps = list(
        session.scalars(
            select(Step)
            .join(Pathway, Pathway.id == Step.pathway_id)
            .where(
                Step.context_id == context_id,
                Step.archived_at.is_(None),
                # An archived pathway's steps teach nobody new; the one asked about still
                # gets its answer.
                or_(Pathway.archived_at.is_(None), Pathway.id == pathway_id),
            )
            .order_by(Pathway.position, Pathway.id, Step.position, Step.id)
        )
    )
    step_ids = [s.id for s in steps]
    rules = {r.step_id: r for r in step_rules(session, context_id=context_id, step_ids=step_ids)}
    leads: dict[int, set[int]] = {}
    for lead_pathway_id, competency_id in session.execute(
        select(PathwayCompetency.pathway_id, PathwayCompetency.competency_id).where(
            PathwayCompetency.pathway_id.in_({s.pathway_id for s in steps})
        )
    ):
        leads.setdefault(lead_pathway_id, set()).add(competency_id)
    offered = _ids_with_live_options(session, context_id, step_ids)
    # A step without an option still claims its competency (nobody is told to find evidence
    # elsewhere), but nobody can do it, so opening it gains nothing.
    teaches = {
        s.id: {s.competency_id} if s.competency_id is not None else leads.get(s.pathway_id, set())
        for s in steps
    }
    taught = set().union(*teaches.values()) if teaches else set()
    children = _live_children(session, context_id)
    gained: set[int] = set()

    def reachable(competency_id: int) -> bool:
        parts = children.get(competency_id)
        if parts:
            return all(reachable(part) for part in parts)
        return competency_id not in taught or competency_id in gained

    opened: set[int] = set()
    changed = True
    while changed:  # open every step whose prerequisites are reachable, until nothing changes
        changed = False
        for step in steps:
            if step.id not in opened and all(reachable(c.id) for c in rules[step.id].prerequisites):
                opened.add(step.id)
                if step.id in offered:
                    gained |= teaches[step.id]
                changed = True
    return [
        (s, [c for c in rules[s.id].prerequisites if not reachable(c.id)])
        for s in steps
        if s.pathway_id == pathway_id and s.id not in opened
    ]


def steps_without_options(session: Session, *, context_id: int, pathway_id: int) -> list[Step]:
    """The pathway's steps with no option on offer: students can't choose (or do) them."""
    steps = _live_steps(session, context_id, pathway_id)
    offered = _ids_with_live_options(session, context_id, [s.id for s in steps])
    return [s for s in steps if s.id not in offered]


def _live_steps(session: Session, context_id: int, pathway_id: int) -> list[Step]:
    return list(
        session.scalars(
            select(Step)
            .where(
                Step.context_id == context_id,
                Step.pathway_id == pathway_id,
                Step.archived_at.is_(None),
            )
            .order_by(Step.position, Step.id)
        )
    )


def _ids_with_live_options(session: Session, context_id: int, step_ids: list[int]) -> set[int]:
    return set(
        session.scalars(
            select(Option.step_id).where(
                Option.context_id == context_id,
                Option.step_id.in_(step_ids),
                Option.archived_at.is_(None),
            )
        )
    )


def _live_children(session: Session, context_id: int) -> dict[int, list[int]]:
    """Each competency's unarchived sub-competencies, by parent."""
    children: dict[int, list[int]] = {}
    for child_id, parent_id in session.execute(
        select(Competency.id, Competency.parent_id).where(
            Competency.context_id == context_id,
            Competency.parent_id.is_not(None),
            Competency.archived_at.is_(None),
        )
    ):
        if parent_id is not None:  # the query asks for children only; this tells mypy so
            children.setdefault(parent_id, []).append(child_id)
    return children
