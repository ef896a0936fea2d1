"""Which steps are open to students: loading the rule's inputs (for one student or a class),
and teachers' manual unlocks. The rule itself is pathways.unlock.unlock_state; every page and
check reads it through here, so the teacher's lists and the student's pages cannot disagree."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Set

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.pathways.authoring import lock_parent
from lti_app.pathways.errors import StepNotFoundError
from lti_app.pathways.models import (
    Choice,
    ChoiceStatus,
    Pathway,
    Step,
    StepPrerequisite,
    StepUnlock,
)
from lti_app.pathways.services import get_pathway
from lti_app.pathways.unlock import (
    CompetencyRef,
    StepRule,
    UnlockState,
    step_unlock_states,
    unlock_state,
)


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


def work_a_lock_stops(context_id: int) -> Select[int, int]:
    """(student, step) pairs of the course's work a lock would stop: to start or hand in, in a
    pathway on offer. An archived pathway's work takes no move, open or locked (its student
    reads it; a teacher's unlock opens nothing), so a lock there stops nothing. Callers wanting
    more of the work swap the columns (with_only_columns keeps the joins and conditions)."""
    return (
        select(Choice.person_id, Choice.step_id)
        .join(Step, Step.id == Choice.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(
            Choice.context_id == context_id,
            Choice.status.in_(WORK_A_LOCK_STOPS),
            Pathway.archived_at.is_(None),
        )
    )


def class_unlock_states(
    session: Session,
    *,
    context_id: int,
    pairs: Iterable[tuple[int, int]],
    mastered: Set[tuple[int, int]] | None = None,
) -> dict[tuple[int, int], UnlockState]:
    """Decide for each (student, step) pair whether the step is open to the student, by the
    rule the student's own pages read, for a whole class in three queries at most.

    :param mastered: the course's mastered (student, competency) pairs when the caller already
        has them; otherwise read for these students and prerequisites.
    """
    pairs = set(pairs)
    if not pairs:
        return {}
    rules = {
        r.step_id: r
        for r in step_rules(session, context_id=context_id, step_ids={s for _, s in pairs})
    }
    waiting = {step_id for step_id, rule in rules.items() if rule.prerequisites}
    persons = {p for p, s in pairs if s in waiting}
    manual: set[tuple[int, int]] = set()
    if persons:
        manual = _manual_unlock_pairs(session, context_id, persons, waiting)
        if mastered is None:
            competencies = {c.id for s in waiting for c in rules[s].prerequisites}
            mastered = _mastered_pairs(session, context_id, persons, competencies)
    mastered = mastered or set()
    return {
        (p, s): unlock_state(
            rules[s],
            {c.id for c in rules[s].prerequisites if (p, c.id) in mastered},
            is_manual=(p, s) in manual,
        )
        for p, s in pairs
    }


def students_locked_out_by(
    session: Session, *, context_id: int, step_id: int, prerequisite_ids: Collection[int]
) -> list[int]:
    """The students with work to do on the step that these prerequisites, if saved, would lock
    it for: it is open to them now and would not be under the new rule.

    Students a teacher unlocked the step for keep it open, so they are not counted; ids that
    are archived or not in the course lock nothing, as for the students.
    """
    (now,) = step_rules(session, context_id=context_id, step_ids=[step_id])
    new = session.execute(
        select(Competency.id, Competency.code, Competency.title)
        .where(
            Competency.id.in_(list(prerequisite_ids)),
            Competency.context_id == context_id,
            Competency.archived_at.is_(None),
        )
        .order_by(Competency.code)
    ).all()
    saved = StepRule(step_id, tuple(CompetencyRef(*row) for row in new))
    if not {c.id for c in saved.prerequisites} - {c.id for c in now.prerequisites}:
        return []  # no new prerequisite: nobody open now is locked by the change
    working = list(
        session.scalars(
            work_a_lock_stops(context_id)
            .with_only_columns(Choice.person_id)
            .where(Choice.step_id == step_id)
            .order_by(Choice.person_id)
        )
    )
    if not working:
        return []
    manual = _manual_unlock_pairs(session, context_id, working, {step_id})
    competencies = {c.id for c in now.prerequisites + saved.prerequisites}
    mastered = _mastered_pairs(session, context_id, working, competencies)
    locked_out = []
    for person in working:
        ids = {c for c in competencies if (person, c) in mastered}
        is_manual = (person, step_id) in manual
        if (
            unlock_state(now, ids, is_manual=is_manual).is_unlocked
            and not unlock_state(saved, ids, is_manual=is_manual).is_unlocked
        ):
            locked_out.append(person)
    return locked_out


def _manual_unlock_pairs(
    session: Session, context_id: int, person_ids: Collection[int], step_ids: Collection[int]
) -> set[tuple[int, int]]:
    return {
        (person_id, step_id)
        for person_id, step_id in session.execute(
            select(StepUnlock.person_id, StepUnlock.step_id).where(
                StepUnlock.context_id == context_id,
                StepUnlock.person_id.in_(list(person_ids)),
                StepUnlock.step_id.in_(list(step_ids)),
            )
        )
    }


def _mastered_pairs(
    session: Session, context_id: int, person_ids: Collection[int], competency_ids: Collection[int]
) -> set[tuple[int, int]]:
    # Imported here, as in mastered_ids_for: pathways asks mastery, never the other way round.
    from lti_app.mastery.models import StudentCompetencyLevel

    return {
        (person_id, competency_id)
        for person_id, competency_id in session.execute(
            select(StudentCompetencyLevel.person_id, StudentCompetencyLevel.competency_id).where(
                StudentCompetencyLevel.context_id == context_id,
                StudentCompetencyLevel.person_id.in_(list(person_ids)),
                StudentCompetencyLevel.competency_id.in_(list(competency_ids)),
                StudentCompetencyLevel.is_mastered.is_(True),
            )
        )
    }
