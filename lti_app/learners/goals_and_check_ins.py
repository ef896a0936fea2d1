"""A student's goals and check-ins with their teacher, with who may change and see what.
They hang on the student's learner profile (learners.services)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.learners.models import OPEN_GOAL_STATUSES, CheckIn, Goal, GoalStatus, LearnerProfile
from lti_app.learners.services import (
    NotAllowedError,
    _clean_text,
    get_or_create_profile,
    lock_profile,
)


class GoalNotFoundError(LookupError):
    """No such goal for this student in this course."""


class DuplicateGoalError(ValueError):
    """The goal is already on the student's list with another target date."""


def add_goal(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    text: str,
    target_date: date | None = None,
    created_by_id: int,
    editor_is_teacher: bool,
) -> Goal:
    """Add a goal to a student's profile; students add goals only to their own profile.

    A goal with the same words as one the student is still working on, and the same target
    date or none typed, is that goal (a double click, or the form sent again): it is returned
    unchanged instead of added twice.

    :raises DuplicateGoalError: the same words with another target date: the editor most
        likely wants the date on the goal already there, so they are sent to change it there
        rather than told "added" (and left with the old date) or given the goal twice.
    """
    if not editor_is_teacher and created_by_id != person_id:
        raise NotAllowedError("You can only add goals to your own profile.")
    text = _require_text(text, "goal")
    profile = lock_profile(session, context_id=context_id, person_id=person_id)
    same = _same_words(text)
    for existing in session.scalars(
        select(Goal).where(
            Goal.profile_id == profile.id,
            Goal.context_id == context_id,
            Goal.status.in_(OPEN_GOAL_STATUSES),
        )
    ):
        if _same_words(existing.text) != same:
            continue
        if target_date is None or existing.target_date == target_date:
            return existing
        has_date = (
            f"the target date {existing.target_date.isoformat()}"
            if existing.target_date
            else "no target date"
        )
        raise DuplicateGoalError(
            f"This goal is already on the list, with {has_date}: change the target date of "
            "that goal instead of adding it again."
        )
    goal = Goal(
        context_id=context_id,
        profile_id=profile.id,
        text=text,
        target_date=target_date,
        created_by_id=created_by_id,
    )
    session.add(goal)
    session.flush()
    return goal


def update_goal(
    session: Session,
    *,
    context_id: int,
    goal_id: int,
    editor_id: int,
    editor_is_teacher: bool,
    text: str,
    target_date: date | None,
    status: GoalStatus,
) -> Goal:
    """Replace a goal's text, target date and status; a student edits only their own goals.

    :raises GoalNotFoundError: no such goal in the course, or (for a student) not theirs.
    """
    goal, owner_id = _goal_with_owner(session, context_id=context_id, goal_id=goal_id)
    if not editor_is_teacher and owner_id != editor_id:
        # Same answer as a missing goal, so ids of other students' goals reveal nothing.
        raise GoalNotFoundError("That goal does not exist.")
    goal.text = _require_text(text, "goal")
    goal.target_date = target_date
    goal.status = GoalStatus(status)
    session.flush()
    return goal


def delete_goal(
    session: Session, *, context_id: int, goal_id: int, editor_id: int, editor_is_teacher: bool
) -> int:
    """Delete a goal made by mistake, so it is off every page and family report; return the
    student's person id. A teacher deletes any goal; a student only as `student_may_delete`
    says.

    :raises GoalNotFoundError: no such goal in the course, or (for a student) not theirs.
    :raises NotAllowedError: a student's goal that must be dropped instead; the message says why.
    """
    goal, owner_id = _goal_with_owner(session, context_id=context_id, goal_id=goal_id)
    if not editor_is_teacher:
        if owner_id != editor_id:
            raise GoalNotFoundError("That goal does not exist.")
        check_ins = list_check_ins(
            session, context_id=context_id, person_id=owner_id, include_private=False
        )
        if not student_may_delete(goal, person_id=owner_id, check_ins=check_ins):
            raise NotAllowedError(
                "Only goals you set yourself, with no check-in with your teacher since, can "
                "be deleted. Set this goal's status to Dropped instead, or ask your teacher."
            )
    session.delete(goal)
    session.flush()
    return owner_id


def student_may_delete(goal: Goal, *, person_id: int, check_ins: Iterable[CheckIn]) -> bool:
    """Whether the student may delete this goal: one they set themselves (not their
    teacher's), with no check-in they can see recorded since it was set. Check-ins do not name
    the goals they were about, so any later one may have been about this goal, and what was
    agreed there should not lose its goal; such a goal is dropped instead."""
    if goal.created_by_id != person_id:
        return False
    return not any(not c.is_private and c.created_at >= goal.created_at for c in check_ins)


def list_goals(session: Session, *, context_id: int, person_id: int) -> list[Goal]:
    """Return a student's goals in the course, oldest first."""
    return list(
        session.scalars(
            select(Goal)
            .join(LearnerProfile, LearnerProfile.id == Goal.profile_id)
            .where(
                Goal.context_id == context_id,
                LearnerProfile.context_id == context_id,
                LearnerProfile.person_id == person_id,
            )
            .order_by(Goal.created_at, Goal.id)
        )
    )


def add_check_in(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    author_id: int,
    held_on: date,
    note: str = "",
    next_steps: str = "",
    is_private: bool = False,
) -> CheckIn:
    """Record a check-in with a student (the view lets only teachers call this)."""
    profile = get_or_create_profile(session, context_id=context_id, person_id=person_id)
    check_in = CheckIn(
        context_id=context_id,
        profile_id=profile.id,
        held_on=held_on,
        note=_clean_text(note, "note", "note"),
        next_steps=_clean_text(next_steps, "next steps", "next_steps"),
        is_private=is_private,
        author_id=author_id,
    )
    session.add(check_in)
    session.flush()
    return check_in


def list_check_ins(
    session: Session, *, context_id: int, person_id: int, include_private: bool
) -> list[CheckIn]:
    """Return a student's check-ins, newest first; private ones only when asked for."""
    query = (
        select(CheckIn)
        .join(LearnerProfile, LearnerProfile.id == CheckIn.profile_id)
        .where(
            CheckIn.context_id == context_id,
            LearnerProfile.context_id == context_id,
            LearnerProfile.person_id == person_id,
        )
        .order_by(CheckIn.held_on.desc(), CheckIn.id.desc())
    )
    if not include_private:
        query = query.where(CheckIn.is_private.is_(False))
    return list(session.scalars(query))


def _goal_with_owner(session: Session, *, context_id: int, goal_id: int) -> tuple[Goal, int]:
    row = session.execute(
        select(Goal, LearnerProfile.person_id)
        .join(LearnerProfile, LearnerProfile.id == Goal.profile_id)
        .where(Goal.id == goal_id, Goal.context_id == context_id)
    ).one_or_none()
    if row is None:
        raise GoalNotFoundError("That goal does not exist.")
    return row[0], row[1]


def _same_words(text: str) -> str:
    return " ".join(text.split()).casefold()


def _require_text(value: str, label: str) -> str:
    value = _clean_text(value, label)
    if not value:
        raise ValueError(f"The {label} cannot be empty.")
    return value
