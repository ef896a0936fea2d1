"""Students' choices and the student's moves: choosing, starting, submitting, withdrawing.

The state machine (who moves a choice, from which statuses):

    student  choose_option   (none), chosen, approved, rejected -> chosen   (change of mind)
    student  withdraw_choice chosen, approved, rejected -> (none); on a new try -> done, as
                             the last try closed
    teacher  approve_choices chosen -> approved
    teacher  return_choices  chosen, approved -> rejected;  submitted -> returned (with a note)
    student  start_choice    approved, or chosen when no approval is needed, returned
                             -> in_progress
    student  submit_choice   in_progress, returned, or startable -> submitted
    teacher  complete_choices / complete_choices_for_competency  -> done

The teacher's moves, and the list of what waits for them, live in `reviewing`.

Once work has started (in_progress and later) the student can no longer switch options.
The student's moves other than withdrawing need the step open to them now: a step locked again
(a teacher withdrew an unlock) keeps its choice and work, but takes no new work until it opens.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Literal, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.learners.vocab import strip_control_characters
from lti_app.pathways.attempts import restore_last_attempt
from lti_app.pathways.errors import (
    ChoiceNotAllowedError,
    ChoiceNotFoundError,
    OptionNotFoundError,
)
from lti_app.pathways.models import Attempt, Choice, ChoiceStatus, Option, Pathway, Step
from lti_app.pathways.text import clean_url
from lti_app.pathways.unlock import UnlockState, step_unlock_states
from lti_app.pathways.unlocking import manual_unlock_ids, mastered_ids_for, step_rules

MAX_NOTE_LENGTH = 5000

CHANGEABLE = frozenset({ChoiceStatus.CHOSEN, ChoiceStatus.APPROVED, ChoiceStatus.REJECTED})
"""Statuses in which the student may still switch to another option: nothing started yet."""


def may_start(status: ChoiceStatus, *, requires_approval: bool) -> bool:
    """Tell whether a choice in this status may begin (or resume) work."""
    if status is ChoiceStatus.CHOSEN:
        return not requires_approval
    return status in {ChoiceStatus.APPROVED, ChoiceStatus.RETURNED}


def may_submit(status: ChoiceStatus, *, requires_approval: bool) -> bool:
    """Tell whether a choice in this status may be handed in."""
    return status is ChoiceStatus.IN_PROGRESS or may_start(
        status, requires_approval=requires_approval
    )


def clean_note(value: str) -> str:
    """Return a note trimmed and without control characters; refuse one that is too long."""
    value = strip_control_characters(value).strip()
    if len(value) > MAX_NOTE_LENGTH:
        raise ChoiceNotAllowedError(f"Keep the note under {MAX_NOTE_LENGTH} characters.")
    return value


# --- the student's moves ----------------------------------------------------------------------


def choose_option(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    option_id: int,
    mastered_ids: Set[int] | None = None,
) -> Choice:
    """Pick an option for its step, or switch to it while the work has not started.

    :raises OptionNotFoundError: no such option in this course.
    :raises ChoiceNotAllowedError: the option (its step, its pathway) is archived, the step is
        locked, or work on it has started.
    """
    row = session.execute(
        select(Option, Step)
        .join(Step, Step.id == Option.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(
            Option.id == option_id,
            Option.context_id == context_id,
            Option.archived_at.is_(None),
            Step.archived_at.is_(None),
            Pathway.archived_at.is_(None),
        )
    ).one_or_none()
    if row is None:
        _refuse_archived(session, context_id, option_id)
    option, step = row
    state = _unlock_state(session, context_id, person_id, step.id, mastered_ids)
    if not state.is_unlocked:
        raise ChoiceNotAllowedError(f"This step is locked. {state.reason}.")
    # Locked until the transaction ends (PostgreSQL), so a teacher answering this very choice at
    # the same moment either goes first (and we read their answer) or waits for the switch.
    mine = (
        select(Choice)
        .where(Choice.person_id == person_id, Choice.step_id == step.id)
        .with_for_update()
    )
    choice = session.scalars(mine).one_or_none()
    if choice is None:
        try:
            with session.begin_nested():
                choice = Choice(
                    context_id=context_id,
                    person_id=person_id,
                    step_id=step.id,
                    option_id=option.id,
                    status=ChoiceStatus.CHOSEN,
                    chosen_at=utcnow(),
                )
                session.add(choice)
        except IntegrityError:
            # A second request of the same student (a double click) chose for this step
            # first; carry on from its choice instead of failing.
            choice = session.scalars(mine).one()
        else:
            return choice
    if choice.status not in CHANGEABLE:
        raise ChoiceNotAllowedError(_no_switch(choice.status))
    if choice.option_id == option.id and choice.status is not ChoiceStatus.REJECTED:
        return choice
    choice.option_id = option.id
    choice.status = ChoiceStatus.CHOSEN
    choice.chosen_at = utcnow()
    choice.approved_at = None
    choice.decided_by_id = None
    choice.teacher_feedback = ""
    session.flush()
    return choice


def withdraw_choice(session: Session, *, context_id: int, person_id: int, choice_id: int) -> bool:
    """Drop a pick before work starts, leaving the step without a choice; or, for a new try at
    a step done before, give up the new try: the step is done again with the last try's work.
    Tell whether it was a new try given up.
    """
    choice, _ = own_choice(session, context_id, person_id, choice_id)
    if choice.status is ChoiceStatus.DONE:
        earlier = select(Attempt.id).where(
            Attempt.person_id == person_id, Attempt.step_id == choice.step_id
        )
        if session.scalar(earlier.limit(1)) is not None:
            return True  # the second click of giving up a new try: the first put it back
        raise ChoiceNotAllowedError("This step is done, so there is no choice to withdraw.")
    if choice.status not in CHANGEABLE:
        raise ChoiceNotAllowedError("Work on this step has started, so the choice stays.")
    if restore_last_attempt(session, choice=choice):
        return True
    session.delete(choice)
    session.flush()
    return False


def start_choice(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    choice_id: int,
    mastered_ids: Set[int] | None = None,
) -> Choice:
    """Begin work on a chosen option (or resume work the teacher returned).

    :raises ChoiceNotAllowedError: the status does not allow it, or the step is locked for the
        student now (a teacher withdrew their unlock, or a prerequisite is no longer mastered).
    """
    choice, option = own_choice(session, context_id, person_id, choice_id)
    _refuse_if_picked_after_retired(choice, option)
    if choice.status is not ChoiceStatus.IN_PROGRESS and not may_start(
        choice.status, requires_approval=option.requires_approval
    ):
        raise ChoiceNotAllowedError(_refusal(choice.status, "start"))
    _refuse_if_locked(session, context_id, person_id, choice.step_id, mastered_ids)
    if choice.status is ChoiceStatus.IN_PROGRESS:
        return choice
    choice.status = ChoiceStatus.IN_PROGRESS
    choice.started_at = choice.started_at or utcnow()
    session.flush()
    return choice


def submit_choice(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    choice_id: int,
    note: str = "",
    url: str | None = None,
    mastered_ids: Set[int] | None = None,
) -> Choice:
    """Hand in the work for the teacher to look at, with a note and an optional http(s) link.

    :raises ChoiceNotAllowedError: as for start_choice.
    """
    choice, option = own_choice(session, context_id, person_id, choice_id)
    cleaned_url = clean_url(url) if url and url.strip() else None
    if (
        choice.status is ChoiceStatus.SUBMITTED
        and choice.submission_note == clean_note(note)
        and choice.submission_url == cleaned_url
    ):
        return choice  # the same hand-in again (a double click): it is handed in, as asked
    _refuse_if_picked_after_retired(choice, option)
    if not may_submit(choice.status, requires_approval=option.requires_approval):
        raise ChoiceNotAllowedError(_refusal(choice.status, "submit"))
    _refuse_if_locked(session, context_id, person_id, choice.step_id, mastered_ids)
    now = utcnow()
    choice.submission_note = clean_note(note)
    choice.submission_url = cleaned_url
    choice.status = ChoiceStatus.SUBMITTED
    choice.started_at = choice.started_at or now
    choice.submitted_at = now
    session.flush()
    return choice


def choices_for_student(session: Session, *, context_id: int, person_id: int) -> list[Choice]:
    """Return all of a student's choices in the course."""
    return list(
        session.scalars(
            select(Choice)
            .where(Choice.context_id == context_id, Choice.person_id == person_id)
            .order_by(Choice.id)
        )
    )


# --- helpers ----------------------------------------------------------------------------------


def _unlock_state(
    session: Session,
    context_id: int,
    person_id: int,
    step_id: int,
    mastered_ids: Set[int] | None,
) -> UnlockState:
    if mastered_ids is None:
        mastered_ids = mastered_ids_for(session, context_id=context_id, person_id=person_id)
    return step_unlock_states(
        step_rules(session, context_id=context_id, step_ids=[step_id]),
        mastered_ids,
        manual_unlock_ids(session, context_id=context_id, person_id=person_id, step_ids=[step_id]),
    )[step_id]


def _refuse_if_locked(
    session: Session,
    context_id: int,
    person_id: int,
    step_id: int,
    mastered_ids: Set[int] | None,
) -> None:
    """Refuse new work on a step that is locked for the student now.

    A pick made while a teacher's unlock stood outlives the unlock: the teacher withdrawing it
    means "not yet", so the pick and anything handed in stay, but no work starts or is handed
    in there until the step opens again (by mastery or a new unlock).
    """
    state = _unlock_state(session, context_id, person_id, step_id, mastered_ids)
    if not state.is_unlocked:
        raise ChoiceNotAllowedError(
            f"This step is locked for you now. {state.reason}. Your choice and your work are "
            "kept: carry on once the step opens again."
        )


def picked_after_retired(choice: Choice, option: Option) -> bool:
    """Tell whether the choice's option was taken off offer before it was picked (a new try
    at a done step, opened on the option it was done with)."""
    return option.archived_at is not None and choice.chosen_at >= option.archived_at


def _refuse_if_picked_after_retired(choice: Choice, option: Option) -> None:
    """Refuse work on an option the teacher retired before this pick.

    Archiving an option lets the students who had picked it finish; it offers it to nobody
    new, and a new try picks anew.
    """
    if picked_after_retired(choice, option):
        raise ChoiceNotAllowedError(
            f"Your teacher has taken “{option.title}” off offer, so no new work starts on it: "
            "switch to another option."
        )


def own_choice(
    session: Session, context_id: int, person_id: int, choice_id: int
) -> tuple[Choice, Option]:
    """The student's own choice and its option, locked; refused in an archived pathway."""
    row = session.execute(
        select(Choice, Option, Pathway.archived_at)
        .join(Option, Option.id == Choice.option_id)
        .join(Step, Step.id == Choice.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(
            Choice.id == choice_id,
            Choice.context_id == context_id,
            # Another student's choice is "not found", never "not yours".
            Choice.person_id == person_id,
        )
        # Locked until the transaction ends, so a teacher's answer given at the same moment is
        # read, not overwritten (PostgreSQL; SQLite writes one transaction at a time anyway).
        .with_for_update(of=Choice)
    ).one_or_none()
    if row is None:
        raise ChoiceNotFoundError("That choice does not exist.")
    if row[2] is not None:
        # The teacher retired the pathway: its work stays for the student to read (with the
        # teacher's notes) but takes no new moves, so nothing reaches the teacher from a
        # pathway they closed. Restoring the pathway opens the work again.
        raise ChoiceNotAllowedError(
            "Your teacher archived this pathway, so its work can no longer be changed. What "
            "you handed in and your teacher's notes stay here to read."
        )
    return row[0], row[1]


def _refuse_archived(session: Session, context_id: int, option_id: int) -> NoReturn:
    """Say what the teacher retired (a page from before they archived it offers the option):
    the whole step or pathway, or only that option, since only the last leaves others to pick."""
    row = session.execute(
        select(Step.archived_at, Pathway.archived_at)
        .select_from(Option)
        .join(Step, Step.id == Option.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(Option.id == option_id, Option.context_id == context_id)
    ).one_or_none()
    if row is None:
        raise OptionNotFoundError("That option is not on offer in this course.")
    step_archived_at, pathway_archived_at = row
    if pathway_archived_at is not None:
        raise ChoiceNotAllowedError(
            "Your teacher archived this pathway, so none of its options can be chosen now."
        )
    if step_archived_at is not None:
        raise ChoiceNotAllowedError(
            "Your teacher has taken this step off offer, so none of its options can be chosen now."
        )
    raise ChoiceNotAllowedError(
        "Your teacher has taken that option off offer, so it cannot be chosen now."
    )


def _no_switch(status: ChoiceStatus) -> str:
    if status is ChoiceStatus.DONE:
        return "You have already started work on this step and it is done, so you can't switch."
    if status is ChoiceStatus.SUBMITTED:
        return "You have already started work on this step and handed it in, so you can't switch."
    return "You have already started work on this step, so you can't switch options now."


def _refusal(status: ChoiceStatus, action: Literal["start", "submit"]) -> str:
    if status is ChoiceStatus.CHOSEN:
        return "Your teacher needs to approve this choice first."
    if status is ChoiceStatus.REJECTED:
        return "Your teacher sent this choice back; pick an option again."
    if status is ChoiceStatus.SUBMITTED:
        return "This work is already handed in."
    if status is ChoiceStatus.DONE:
        return "This step is already done."
    return f"You can't {action} this work now."
