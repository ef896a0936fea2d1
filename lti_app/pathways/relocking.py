"""What a change to the framework takes from students: mastery they held through the
sub-competencies of a parent (a new part has no evidence yet), and with it the steps their
work is on. Read before the change, compared after, so the teacher can be asked first."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.pathways.models import Step
from lti_app.pathways.unlocking import class_unlock_states, work_a_lock_stops


@dataclass(frozen=True)
class MasterySnapshot:
    """What a framework change could take away, read before it: the students' mastered
    competencies, and their work on steps open to them."""

    mastered: frozenset[tuple[int, int]]
    """(student, competency) pairs."""
    open_work: frozenset[tuple[int, int]]
    """(student, step) pairs: work to start or hand in on a step open to them."""


@dataclass(frozen=True)
class MasteryLoss:
    """What a framework change took away since a snapshot."""

    unmastered: tuple[tuple[int, int], ...]
    """(student, competency) pairs mastered before and not now."""
    relocked: tuple[tuple[int, int], ...]
    """(student, step) pairs: work the student can no longer start or hand in."""

    def __bool__(self) -> bool:
        return bool(self.unmastered or self.relocked)

    def within(self, other: MasteryLoss) -> bool:
        """Whether this loss takes nothing `other` does not: a teacher who confirmed `other`
        confirmed this too (a student who regained mastery meanwhile is no new loss)."""
        return set(self.unmastered) <= set(other.unmastered) and set(self.relocked) <= set(
            other.relocked
        )


def mastery_snapshot(session: Session, *, context_id: int) -> MasterySnapshot:
    """Read the course's mastery and open work (four queries, however big the class)."""
    mastered = _mastered_pairs(session, context_id)
    return MasterySnapshot(mastered, frozenset(_open_work(session, context_id, mastered)))


def mastery_lost_since(
    session: Session, *, context_id: int, before: MasterySnapshot
) -> MasteryLoss:
    """Compare the course now with `before`: which students stopped mastering what, and whose
    work on a step locked because of it. Levels must have been recomputed since the change
    (mastery.scales.recompute_course); steps a teacher unlocked by hand stay open.

    Mastery of a competency archived now is no loss: it locks no step and nobody sees it (a
    parent archived with its parts keeps its roll-up over them anyway, `counted_children`)."""
    session.flush()
    mastered = _mastered_pairs(session, context_id)
    still_open = _open_work(session, context_id, mastered)
    archived = _archived_ids(session, context_id)
    return MasteryLoss(
        tuple(sorted(pair for pair in before.mastered - mastered if pair[1] not in archived)),
        tuple(sorted(before.open_work - still_open)),
    )


def _archived_ids(session: Session, context_id: int) -> set[int]:
    return set(
        session.scalars(
            select(Competency.id).where(
                Competency.context_id == context_id, Competency.archived_at.is_not(None)
            )
        )
    )


def _mastered_pairs(session: Session, context_id: int) -> frozenset[tuple[int, int]]:
    # Imported here, as in mastered_ids_for: pathways asks mastery, never the other way round.
    from lti_app.mastery.models import StudentCompetencyLevel

    return frozenset(
        (person_id, competency_id)
        for person_id, competency_id in session.execute(
            select(StudentCompetencyLevel.person_id, StudentCompetencyLevel.competency_id).where(
                StudentCompetencyLevel.context_id == context_id,
                StudentCompetencyLevel.is_mastered.is_(True),
            )
        )
    )


def _open_work(
    session: Session, context_id: int, mastered: Set[tuple[int, int]]
) -> set[tuple[int, int]]:
    """(student, step) pairs of work a locked step would refuse, on steps open now."""
    work = [(p, s) for p, s in session.execute(work_a_lock_stops(context_id))]
    states = class_unlock_states(session, context_id=context_id, pairs=work, mastered=mastered)
    return {pair for pair, state in states.items() if state.is_unlocked}


def loss_titles(
    session: Session, *, context_id: int, loss: MasteryLoss
) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """The titles a teacher reads a loss by: (step id, title) and (competency id, code, title),
    in the course only, each list in reading order."""
    step_ids = {step_id for _, step_id in loss.relocked}
    competency_ids = {competency_id for _, competency_id in loss.unmastered}
    steps = session.execute(
        select(Step.id, Step.title)
        .where(Step.context_id == context_id, Step.id.in_(step_ids))
        .order_by(Step.title, Step.id)
    ).all()
    competencies = session.execute(
        select(Competency.id, Competency.code, Competency.title)
        .where(Competency.context_id == context_id, Competency.id.in_(competency_ids))
        .order_by(Competency.code, Competency.id)
    ).all()
    return [(i, t) for i, t in steps], [(i, c, t) for i, c, t in competencies]
