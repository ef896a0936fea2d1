"""What a student (and their family) may see of a learner profile, its goals and its
check-ins: never teacher notes or private check-ins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from sqlalchemy.orm import Session

from lti_app.learners.goals_and_check_ins import list_check_ins, list_goals, student_may_delete
from lti_app.learners.models import CheckIn, Goal, GoalStatus, LearnerProfile, is_overdue
from lti_app.learners.services import get_profile
from lti_app.learners.vocab import CareerCluster, Modality

_E = TypeVar("_E", CareerCluster, Modality)


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
