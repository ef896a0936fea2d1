"""Learner profiles, goals and check-ins, with who may change and see what."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypedDict, TypeVar, Unpack

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.learners.models import (
    OPEN_GOAL_STATUSES,
    CheckIn,
    Goal,
    GoalStatus,
    LearnerProfile,
    is_overdue,
)
from lti_app.learners.vocab import (
    CareerCluster,
    Modality,
    clean_tags,
    parse_career_clusters,
    parse_modalities,
    strip_control_characters,
)

MAX_TEXT_LENGTH = 5000
_E = TypeVar("_E", CareerCluster, Modality)


class ProfileNotFoundError(LookupError):
    """No learner profile for this student in this course."""


class GoalNotFoundError(LookupError):
    """No such goal for this student in this course."""


class NotAllowedError(PermissionError):
    """The editor may not make this change; the message says why."""


class DuplicateGoalError(ValueError):
    """The goal is already on the student's list with another target date."""


class ProfileFields(TypedDict, total=False):
    """Every profile field an editor may set; which ones depends on who edits."""

    interests: Sequence[str]
    career_clusters: Sequence[str | CareerCluster]
    career_goal_text: str
    preferred_modalities: Sequence[str | Modality]
    preferences_text: str
    strengths: str
    needs_and_supports: str
    non_academic_notes: str
    teacher_notes: str


STUDENT_EDITABLE_FIELDS = frozenset(
    {"interests", "career_clusters", "career_goal_text", "preferred_modalities", "preferences_text"}
)
TEACHER_ONLY_FIELDS = frozenset(
    {"strengths", "needs_and_supports", "non_academic_notes", "teacher_notes"}
)
_FIELD_LABELS = {
    "strengths": "strengths",
    "needs_and_supports": "needs and supports",
    "non_academic_notes": "notes on non-academic skills",
    "teacher_notes": "teacher notes",
}


@dataclass(frozen=True)
class GoalView:
    id: int
    text: str
    target_date: date | None
    status: GoalStatus
    student_may_delete: bool = False
    """Set by the student, and no check-in since: see `student_may_delete`."""

    def is_overdue(self, today: date) -> bool:
        return is_overdue(self.target_date, self.status, today)


@dataclass(frozen=True)
class CheckInView:
    id: int
    held_on: date
    note: str
    next_steps: str


@dataclass(frozen=True)
class StudentProfileView:
    """What a student (and their family) may see of a profile: never teacher notes or private
    check-ins."""

    person_id: int
    interests: tuple[str, ...]
    career_clusters: tuple[CareerCluster, ...]
    career_goal_text: str
    preferred_modalities: tuple[Modality, ...]
    preferences_text: str
    strengths: str
    needs_and_supports: str
    non_academic_notes: str
    goals: tuple[GoalView, ...]
    check_ins: tuple[CheckInView, ...]


def get_profile(session: Session, *, context_id: int, person_id: int) -> LearnerProfile | None:
    """Return the student's profile in the course, or None if nobody has written one yet."""
    return session.scalars(
        select(LearnerProfile).where(
            LearnerProfile.context_id == context_id, LearnerProfile.person_id == person_id
        )
    ).one_or_none()


def lock_profile(session: Session, *, context_id: int, person_id: int) -> LearnerProfile:
    """The student's profile, created if missing and locked until the transaction ends, so
    that two requests adding to it (a double click) take turns."""
    profile = get_or_create_profile(session, context_id=context_id, person_id=person_id)
    session.execute(
        select(LearnerProfile.id).where(LearnerProfile.id == profile.id).with_for_update()
    )
    return profile


def get_or_create_profile(session: Session, *, context_id: int, person_id: int) -> LearnerProfile:
    """Return the student's profile in the course, creating an empty one when missing."""
    profile = get_profile(session, context_id=context_id, person_id=person_id)
    if profile is not None:
        return profile
    try:
        # A double click on a first save sends two requests that both find no profile; the
        # second insert meets the first's row (PostgreSQL waits for it, then refuses it).
        with session.begin_nested():
            profile = LearnerProfile(context_id=context_id, person_id=person_id)
            session.add(profile)
    except IntegrityError:
        profile = get_profile(session, context_id=context_id, person_id=person_id)
        if profile is None:
            raise
    return profile


def profiles_for_students(
    session: Session, *, context_id: int, person_ids: Collection[int]
) -> dict[int, LearnerProfile]:
    """Return the profiles of several students of a course in one query, keyed by person id."""
    if not person_ids:
        return {}
    rows = session.scalars(
        select(LearnerProfile).where(
            LearnerProfile.context_id == context_id,
            LearnerProfile.person_id.in_(set(person_ids)),
        )
    )
    return {p.person_id: p for p in rows}


def update_profile(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    editor_is_teacher: bool,
    **fields: Unpack[ProfileFields],
) -> LearnerProfile:
    """Change profile fields; a student may change only their own part.

    :raises NotAllowedError: a student touched a teacher-only field.
    :raises ValueError: a value is not acceptable (unknown career cluster, text too long).
    """
    unknown = set(fields) - STUDENT_EDITABLE_FIELDS - TEACHER_ONLY_FIELDS
    if unknown:
        raise TypeError(f"unknown profile fields: {sorted(unknown)}")
    if not editor_is_teacher:
        forbidden = sorted(TEACHER_ONLY_FIELDS & set(fields))
        if forbidden:
            names = ", ".join(_FIELD_LABELS[f] for f in forbidden)
            raise NotAllowedError(f"Only your teacher can change {names}.")
    profile = get_or_create_profile(session, context_id=context_id, person_id=person_id)
    if "interests" in fields:
        profile.interests = clean_tags(fields["interests"])
    if "career_clusters" in fields:
        profile.career_clusters = parse_career_clusters(fields["career_clusters"])
    if "preferred_modalities" in fields:
        profile.preferred_modalities = parse_modalities(fields["preferred_modalities"])
    values: dict[str, object] = dict(fields)
    for name in (
        "career_goal_text",
        "preferences_text",
        "strengths",
        "needs_and_supports",
        "non_academic_notes",
        "teacher_notes",
    ):
        if name in values:
            setattr(profile, name, _clean_text(str(values[name]), _FIELD_LABELS.get(name, name)))
    session.flush()
    return profile


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
        note=_clean_text(note, "note"),
        next_steps=_clean_text(next_steps, "next steps"),
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


def student_view(session: Session, *, context_id: int, person_id: int) -> StudentProfileView:
    """Return what the student and their family may see of the profile, goals and check-ins."""
    profile = get_profile(session, context_id=context_id, person_id=person_id)
    if profile is None:
        return student_profile_view(None, person_id=person_id, goals=(), check_ins=())
    goals = list_goals(session, context_id=context_id, person_id=person_id)
    check_ins = list_check_ins(
        session, context_id=context_id, person_id=person_id, include_private=False
    )
    return student_profile_view(profile, person_id=person_id, goals=goals, check_ins=check_ins)


def student_profile_view(
    profile: LearnerProfile | None,
    *,
    person_id: int,
    goals: Iterable[Goal],
    check_ins: Iterable[CheckIn],
) -> StudentProfileView:
    """Copy only student-visible fields; private check-ins are dropped even if passed in."""
    check_ins = tuple(check_ins)  # read once per goal
    return StudentProfileView(
        person_id=person_id,
        interests=tuple(profile.interests) if profile else (),
        career_clusters=tuple(_known(CareerCluster, profile.career_clusters) if profile else ()),
        career_goal_text=profile.career_goal_text if profile else "",
        preferred_modalities=tuple(
            _known(Modality, profile.preferred_modalities) if profile else ()
        ),
        preferences_text=profile.preferences_text if profile else "",
        strengths=profile.strengths if profile else "",
        needs_and_supports=profile.needs_and_supports if profile else "",
        non_academic_notes=profile.non_academic_notes if profile else "",
        goals=tuple(
            GoalView(
                id=g.id,
                text=g.text,
                target_date=g.target_date,
                status=g.status,
                student_may_delete=student_may_delete(g, person_id=person_id, check_ins=check_ins),
            )
            for g in goals
        ),
        check_ins=tuple(
            CheckInView(id=c.id, held_on=c.held_on, note=c.note, next_steps=c.next_steps)
            for c in check_ins
            if not c.is_private
        ),
    )


def _known(enum_cls: type[_E], values: Iterable[str]) -> list[_E]:
    # Values stored before an enum changed are skipped rather than breaking the page.
    return [enum_cls(v) for v in values if v in enum_cls._value2member_map_]


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


def _clean_text(value: str, label: str) -> str:
    # Browsers send a textarea's line breaks as CR LF but count each as one character against
    # its maxlength; count (and keep) them as one, or text the page accepted is "too long".
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = strip_control_characters(value).strip()
    if len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"The {label} is too long (at most {MAX_TEXT_LENGTH} characters).")
    return value


def _require_text(value: str, label: str) -> str:
    value = _clean_text(value, label)
    if not value:
        raise ValueError(f"The {label} cannot be empty.")
    return value
