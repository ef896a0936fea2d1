"""Learner profiles, with who may change what. A profile's goals and check-ins:
`learners.goals_and_check_ins`; what a student and their family see: `learners.visible_profile`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.learners.models import LearnerProfile
from lti_app.learners.vocab import (
    CareerCluster,
    Modality,
    clean_tags,
    parse_career_clusters,
    parse_modalities,
    strip_control_characters,
)

MAX_TEXT_LENGTH = 5000


class ProfileNotFoundError(LookupError):
    """No learner profile for this student in this course."""


class NotAllowedError(PermissionError):
    """The editor may not make this change; the message says why."""


class TextTooLongError(ValueError):
    """A text over MAX_TEXT_LENGTH; `about` names the argument it came in, so a page can mark
    the field that holds it (None: the caller did not say)."""

    def __init__(self, message: str, about: str | None = None) -> None:
        super().__init__(message)
        self.about = about


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


def _clean_text(value: str, label: str, about: str | None = None) -> str:
    # Browsers send a textarea's line breaks as CR LF but count each as one character against
    # its maxlength; count (and keep) them as one, or text the page accepted is "too long".
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = strip_control_characters(value).strip()
    if len(value) > MAX_TEXT_LENGTH:
        raise TextTooLongError(
            f"The {label} is too long (at most {MAX_TEXT_LENGTH} characters).", about
        )
    return value
