"""Which steps are open to a student: loading the rule's inputs, and teachers' manual unlocks."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Set

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.pathways.authoring import lock_parent
from lti_app.pathways.errors import StepNotFoundError
from lti_app.pathways.models import (
    Choice,
    ChoiceStatus,
    Option,
    Pathway,
    PathwayCompetency,
    Step,
    StepPrerequisite,
    StepUnlock,
)
from lti_app.pathways.services import get_pathway
from lti_app.pathways.unlock import CompetencyRef, StepRule, UnlockState, step_unlock_states


def step_rules(session: Session, *, context_id: int, step_ids: Collection[int]) -> list[StepRule]:
    """Load the unlock rules of several steps in one query (archived competencies don't count)."""
    rows = session.execute(
        select(StepPrerequisite.step_id, Competency.id, Competency.code, Competency.title)
        .join(Competency, Competency.id == StepPrerequisite.competency_id)
        .where(
            StepPrerequisite.step_id.in_(list(step_ids)),
            Competency.context_id == context_id,
            # An archived competency can no longer be mastered, so it must not lock a step.
            Competency.archived_at.is_(None),
        )
        .order_by(StepPrerequisite.step_id, Competency.code)
    ).all()
    prerequisites: dict[int, list[CompetencyRef]] = {s: [] for s in step_ids}
    for step_id, comp_id, code, title in rows:
        prerequisites[step_id].append(CompetencyRef(comp_id, code, title))
    return [StepRule(s, tuple(refs)) for s, refs in prerequisites.items()]


def manual_unlock_ids(
    session: Session, *, context_id: int, person_id: int, step_ids: Collection[int]
) -> set[int]:
    """Return which of the steps a teacher unlocked for the student."""
    return set(
        session.scalars(
            select(StepUnlock.step_id).where(
                StepUnlock.context_id == context_id,
                StepUnlock.person_id == person_id,
                StepUnlock.step_id.in_(list(step_ids)),
            )
        )
    )


def mastered_ids_for(session: Session, *, context_id: int, person_id: int) -> set[int]:
    """Ask the mastery feature which competencies the student has mastered."""
    # Imported here so pathways loads (and its rules test) without the mastery tables.
    from lti_app.mastery.levels import mastered_competency_ids

    return mastered_competency_ids(session, context_id=context_id, person_id=person_id)


def unlock_states_for_student(
    session: Session,
    *,
    context_id: int,
    pathway_id: int,
    person_id: int,
    mastered_ids: Set[int] | None = None,
) -> dict[int, UnlockState]:
    """Decide which steps of a pathway are open to the student, and why.

    :param mastered_ids: the student's mastered competency ids when the caller already has
        them; otherwise they come from the mastery feature.
    """
    get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    step_ids = list(
        session.scalars(
            select(Step.id).where(Step.context_id == context_id, Step.pathway_id == pathway_id)
        )
    )
    if mastered_ids is None:
        mastered_ids = mastered_ids_for(session, context_id=context_id, person_id=person_id)
    return step_unlock_states(
        step_rules(session, context_id=context_id, step_ids=step_ids),
        mastered_ids,
        manual_unlock_ids(session, context_id=context_id, person_id=person_id, step_ids=step_ids),
    )


def unlock_step_for_students(
    session: Session,
    *,
    context_id: int,
    step_id: int,
    student_ids: Iterable[int],
    unlocked_by_id: int,
) -> list[StepUnlock]:
    """Open a step for students whatever their mastery; students already unlocked are skipped.

    The caller checks that the students belong to the course (the roster is not the domain's).
    """
    # The two requests of a double click would both find no unlock and both insert one, and
    # the second would fail on the unique constraint: locking the step makes the second wait
    # for the first's commit and then find its unlock.
    lock_parent(session, Step, context_id, step_id, StepNotFoundError)
    wanted = list(dict.fromkeys(student_ids))
    existing = manual_unlock_ids_by_person(session, context_id=context_id, step_id=step_id)
    unlocks = [
        StepUnlock(
            context_id=context_id, step_id=step_id, person_id=p, unlocked_by_id=unlocked_by_id
        )
        for p in wanted
        if p not in existing
    ]
    session.add_all(unlocks)
    session.flush()
    return unlocks


def relock_step_for_students(
    session: Session, *, context_id: int, step_id: int, student_ids: Iterable[int]
) -> int:
    """Withdraw teachers' unlocks of a step; return how many were withdrawn."""
    # As for unlocking: a double click's second request waits, then finds nothing to delete.
    lock_parent(session, Step, context_id, step_id, StepNotFoundError)
    unlocks = session.scalars(
        select(StepUnlock).where(
            StepUnlock.context_id == context_id,
            StepUnlock.step_id == step_id,
            StepUnlock.person_id.in_(list(student_ids)),
        )
    ).all()
    for unlock in unlocks:
        session.delete(unlock)
    session.flush()
    return len(unlocks)


def manual_unlock_ids_by_person(session: Session, *, context_id: int, step_id: int) -> set[int]:
    """Return the students a teacher unlocked a step for."""
    return set(
        session.scalars(
            select(StepUnlock.person_id).where(
                StepUnlock.context_id == context_id, StepUnlock.step_id == step_id
            )
        )
    )


WORK_A_LOCK_STOPS = frozenset(
    {ChoiceStatus.CHOSEN, ChoiceStatus.APPROVED, ChoiceStatus.IN_PROGRESS, ChoiceStatus.RETURNED}
)
"""Statuses of work the student still has to start or hand in, which a locked step refuses."""


def students_locked_out_by(
    session: Session, *, context_id: int, step_id: int, prerequisite_ids: Collection[int]
) -> list[int]:
    """The students with work to do on the step that these prerequisites, if saved, would lock
    it for: it is open to them now (by mastery) and they lack a prerequisite that is new.

    Students a teacher unlocked the step for keep it open, so they are not counted; ids that
    are archived or not in the course lock nothing, as for the students.
    """
    (rule,) = step_rules(session, context_id=context_id, step_ids=[step_id])
    old = {c.id for c in rule.prerequisites}
    new = set(
        session.scalars(
            select(Competency.id).where(
                Competency.id.in_(list(prerequisite_ids)),
                Competency.context_id == context_id,
                Competency.archived_at.is_(None),
            )
        )
    )
    if not new - old:
        return []
    unlocked = manual_unlock_ids_by_person(session, context_id=context_id, step_id=step_id)
    working = [
        p
        for p in session.scalars(
            select(Choice.person_id)
            .where(
                Choice.context_id == context_id,
                Choice.step_id == step_id,
                Choice.status.in_(WORK_A_LOCK_STOPS),
            )
            .order_by(Choice.person_id)
        )
        if p not in unlocked
    ]
    if not working:
        return []
    # Imported here, as in mastered_ids_for: pathways asks mastery, never the other way round.
    from lti_app.mastery.models import StudentCompetencyLevel

    mastered: dict[int, set[int]] = {p: set() for p in working}
    for person_id, competency_id in session.execute(
        select(StudentCompetencyLevel.person_id, StudentCompetencyLevel.competency_id).where(
            StudentCompetencyLevel.context_id == context_id,
            StudentCompetencyLevel.person_id.in_(working),
            StudentCompetencyLevel.competency_id.in_(old | new),
            StudentCompetencyLevel.is_mastered.is_(True),
        )
    ):
        mastered[person_id].add(competency_id)
    return [p for p in working if old <= mastered[p] and not new <= mastered[p]]


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
