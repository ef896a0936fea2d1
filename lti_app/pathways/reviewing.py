"""The teacher's moves on students' choices: approving, sending back, marking done, and the list
of picks and work waiting for the teacher.

The state machine they belong to is described in `choices`, beside the student's moves.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.pathways.choices import clean_note
from lti_app.pathways.errors import ChoiceNotAllowedError, ChoiceNotFoundError
from lti_app.pathways.models import (
    Choice,
    ChoiceStatus,
    Option,
    Pathway,
    PathwayCompetency,
    Step,
)


def approve_choices(
    session: Session,
    *,
    context_id: int,
    choice_ids: Collection[int],
    decided_by_id: int,
    seen_option_ids: Mapping[int, int] | None = None,
) -> list[Choice]:
    """Approve picks that wait for approval; already approved ones stay as they are.

    All or nothing: one choice that cannot be approved refuses the whole batch.

    :param seen_option_ids: the option the teacher saw for each choice (choice id -> option
        id); a choice whose student has switched since is refused, never approved unseen.
    """
    choices = _choices(session, context_id, choice_ids, seen_option_ids)
    for choice in choices:
        if choice.status not in {ChoiceStatus.CHOSEN, ChoiceStatus.APPROVED}:
            raise ChoiceNotAllowedError(
                f"A choice that is {_status_words(choice.status)} cannot be approved."
            )
    now = utcnow()
    for choice in choices:
        if choice.status is ChoiceStatus.CHOSEN:
            choice.status = ChoiceStatus.APPROVED
            choice.approved_at = now
            choice.decided_by_id = decided_by_id
    session.flush()
    return choices


def return_choices(
    session: Session,
    *,
    context_id: int,
    choice_ids: Collection[int],
    decided_by_id: int,
    note: str,
    seen_option_ids: Mapping[int, int] | None = None,
) -> list[Choice]:
    """Send choices back with a note: a pick not yet started is rejected (the student picks
    again), a submission is returned (the student keeps working on it).

    A choice this teacher already sent back with this very note (the first press of a double
    click) counts as sent back, not as a mistake.

    :param seen_option_ids: as for approve_choices.
    """
    feedback = clean_note(note)
    if not feedback:
        raise ChoiceNotAllowedError("Write a note so the student knows what to change.")
    choices = _choices(session, context_id, choice_ids, seen_option_ids)
    returnable = {ChoiceStatus.CHOSEN, ChoiceStatus.APPROVED, ChoiceStatus.SUBMITTED}
    repeated = {
        choice.id
        for choice in choices
        if choice.status in {ChoiceStatus.RETURNED, ChoiceStatus.REJECTED}
        and choice.teacher_feedback == feedback
        and choice.decided_by_id == decided_by_id
    }
    for choice in choices:
        if choice.status not in returnable and choice.id not in repeated:
            raise ChoiceNotAllowedError(
                f"A choice that is {_status_words(choice.status)} cannot be sent back."
            )
    now = utcnow()
    for choice in choices:
        if choice.id in repeated:
            continue
        if choice.status is ChoiceStatus.SUBMITTED:
            choice.status = ChoiceStatus.RETURNED
        else:
            choice.status = ChoiceStatus.REJECTED
            choice.approved_at = None
        choice.returned_at = now
        choice.teacher_feedback = feedback
        choice.decided_by_id = decided_by_id
    session.flush()
    return choices


def complete_choices(
    session: Session,
    *,
    context_id: int,
    choice_ids: Collection[int],
    closed_by_id: int,
    feedback: str = "",
    seen_option_ids: Mapping[int, int] | None = None,
) -> list[Choice]:
    """Mark choices done, e.g. after observing offline work; rejected picks cannot be.

    :param seen_option_ids: as for approve_choices.
    """
    choices = _choices(session, context_id, choice_ids, seen_option_ids)
    for choice in choices:
        if choice.status is ChoiceStatus.REJECTED:
            raise ChoiceNotAllowedError("A rejected choice cannot be marked done.")
    text = clean_note(feedback)
    for choice in choices:
        if choice.status is not ChoiceStatus.DONE:
            _close(choice, closed_by_id, text)
    session.flush()
    return choices


def complete_choices_for_competency(
    session: Session,
    *,
    context_id: int,
    person_ids: Collection[int],
    competency_ids: Collection[int],
    closed_by_id: int,
) -> list[Choice]:
    """Close these students' submitted work that the teacher's evidence on these competencies
    answers, in one query however many students there are.

    A step's work counts for its own competency (Step.competency_id) or, when the step has
    none, for every competency its pathway leads to.

    The caller holds the competencies' locks (record_evidence takes them): competency before
    choice is the one lock order, so a teacher closing work from the overview cannot deadlock
    with this.
    """
    ids, people = list(competency_ids), set(person_ids)
    if not ids or not people:
        return []
    pathway_leads = select(PathwayCompetency.pathway_id).where(
        PathwayCompetency.competency_id.in_(ids)
    )
    # Locked, so a colleague's send-back of the same work is not overwritten: this waits for
    # it, and PostgreSQL then checks the WHERE again on the row as committed, which skips work
    # that is no longer submitted. populate_existing: the session may hold the choice as read
    # before the wait.
    choices = list(
        session.scalars(
            select(Choice)
            .join(Step, Step.id == Choice.step_id)
            .where(
                Choice.context_id == context_id,
                Choice.person_id.in_(people),
                Choice.status == ChoiceStatus.SUBMITTED,
                Step.context_id == context_id,
                or_(
                    Step.competency_id.in_(ids),
                    and_(Step.competency_id.is_(None), Step.pathway_id.in_(pathway_leads)),
                ),
            )
            .order_by(Choice.id)
            .with_for_update(of=Choice)
            .execution_options(populate_existing=True)
        )
    )
    for choice in choices:
        _close(choice, closed_by_id, "")
    session.flush()
    return choices


def submitted_work_by_competency(
    session: Session,
    *,
    context_id: int,
    person_ids: Collection[int],
    competency_ids: Collection[int],
) -> dict[tuple[int, int], list[int]]:
    """The submitted work that evidence on each competency would close, as choice ids by
    (person id, competency id): what `complete_choices_for_competency` closes, read unlocked,
    so a page can say so before the teacher clicks."""
    ids, people = set(competency_ids), set(person_ids)
    if not ids or not people:
        return {}
    rows = session.execute(
        select(Choice.id, Choice.person_id, Step.competency_id, PathwayCompetency.competency_id)
        .join(Step, Step.id == Choice.step_id)
        .outerjoin(
            PathwayCompetency,
            and_(
                Step.competency_id.is_(None),
                PathwayCompetency.pathway_id == Step.pathway_id,
                PathwayCompetency.competency_id.in_(ids),
            ),
        )
        .where(
            Choice.context_id == context_id,
            Choice.person_id.in_(people),
            Choice.status == ChoiceStatus.SUBMITTED,
            Step.context_id == context_id,
            or_(Step.competency_id.in_(ids), PathwayCompetency.competency_id.is_not(None)),
        )
        .order_by(Choice.id)
    )
    work: dict[tuple[int, int], list[int]] = {}
    for choice_id, person_id, own_competency, pathway_competency in rows:
        competency_id = own_competency or pathway_competency
        work.setdefault((person_id, competency_id), []).append(choice_id)
    return work


@dataclass(frozen=True)
class PendingItem:
    """A choice waiting for the teacher: an approval or a submission to look at."""

    kind: Literal["approval", "submission"]
    choice: Choice
    person_id: int
    pathway_id: int
    pathway_title: str
    step_id: int
    step_title: str
    option_id: int
    option_title: str
    since: datetime


def pending_for_teacher(session: Session, *, context_id: int) -> list[PendingItem]:
    """Return the course's picks waiting for approval and work waiting to be looked at, oldest
    first, in one query (student names come from the roster, by person_id).

    A pick in an archived pathway waits for nothing: its student can make no move there, so
    approving it would open nothing. Work handed in before the archiving still waits, to be
    looked at and given a level.
    """
    rows = session.execute(
        select(Choice, Option.title, Step.title, Pathway.id, Pathway.title)
        .join(Option, Option.id == Choice.option_id)
        .join(Step, Step.id == Choice.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(
            Choice.context_id == context_id,
            or_(
                and_(
                    Choice.status == ChoiceStatus.CHOSEN,
                    Option.requires_approval.is_(True),
                    Pathway.archived_at.is_(None),
                ),
                Choice.status == ChoiceStatus.SUBMITTED,
            ),
        )
    ).all()
    items = [
        PendingItem(
            kind="submission" if choice.status is ChoiceStatus.SUBMITTED else "approval",
            choice=choice,
            person_id=choice.person_id,
            pathway_id=pathway_id,
            pathway_title=pathway_title,
            step_id=choice.step_id,
            step_title=step_title,
            option_id=choice.option_id,
            option_title=option_title,
            since=(
                choice.submitted_at or choice.chosen_at
                if choice.status is ChoiceStatus.SUBMITTED
                else choice.chosen_at
            ),
        )
        for choice, option_title, step_title, pathway_id, pathway_title in rows
    ]
    items.sort(key=lambda item: (item.since, item.choice.id))
    return items


# --- helpers ----------------------------------------------------------------------------------


def _choices(
    session: Session,
    context_id: int,
    choice_ids: Collection[int],
    seen_option_ids: Mapping[int, int] | None = None,
) -> list[Choice]:
    """The choices, locked until the transaction ends: two teachers (or a teacher and the
    student) on the same choice take turns, and the second reads what the first did."""
    wanted = set(choice_ids)
    choices = list(
        session.scalars(
            select(Choice)
            .where(Choice.context_id == context_id, Choice.id.in_(wanted))
            .order_by(Choice.id)
            .with_for_update()
        )
    )
    if len(choices) != len(wanted):
        raise ChoiceNotFoundError("Some of those choices do not exist in this course.")
    for choice in choices:
        seen = (seen_option_ids or {}).get(choice.id)
        if seen is not None and seen != choice.option_id:
            raise ChoiceNotAllowedError(
                "A student changed their choice since you opened this page, so nothing was "
                "changed. Look at the list again."
            )
    return choices


def _close(choice: Choice, closed_by_id: int, feedback: str) -> None:
    now = utcnow()
    choice.status = ChoiceStatus.DONE
    choice.done_at = now
    choice.decided_by_id = closed_by_id
    if feedback:
        choice.teacher_feedback = feedback


_STATUS_WORDS = {
    ChoiceStatus.CHOSEN: "chosen",
    ChoiceStatus.APPROVED: "approved",
    ChoiceStatus.IN_PROGRESS: "in progress",
    ChoiceStatus.SUBMITTED: "submitted",
    ChoiceStatus.DONE: "done",
    ChoiceStatus.RETURNED: "returned",
    ChoiceStatus.REJECTED: "rejected",
}


def _status_words(status: ChoiceStatus) -> str:
    return _STATUS_WORDS[status]
