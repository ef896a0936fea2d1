"""What a person wrote about other students: counted for their export, kept without its author
by their erasure (those entries are the students' record, not theirs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from lti_app.insights.models import StudentGroup
from lti_app.learners.models import CheckIn, Goal, LearnerProfile
from lti_app.mastery.models import Evidence, EvidenceRevision
from lti_app.pathways.models import Attempt, Choice, StepUnlock
from lti_app.tool.models import Person


def count_rows(session: Session, model: Any, where: ColumnElement[bool]) -> int:
    """How many rows of `model` match `where`."""
    return session.scalar(select(func.count()).select_from(model).where(where)) or 0


def authored_counts(session: Session, person: Person) -> dict[str, int]:
    """How many entries this person wrote about other students (their content is not theirs)."""
    pid = person.id
    return {
        "evidence": count_rows(
            session, Evidence, (Evidence.recorded_by_id == pid) & (Evidence.person_id != pid)
        ),
        "evidence_corrections": count_rows(
            session,
            EvidenceRevision,
            (EvidenceRevision.changed_by_id == pid)
            & EvidenceRevision.evidence_id.in_(
                select(Evidence.id).where(Evidence.person_id != pid)
            ),
        ),
        "goals": count_rows(
            session,
            Goal,
            (Goal.created_by_id == pid)
            & Goal.profile_id.in_(select(LearnerProfile.id).where(LearnerProfile.person_id != pid)),
        ),
        "check_ins": count_rows(
            session,
            CheckIn,
            (CheckIn.author_id == pid)
            & CheckIn.profile_id.in_(
                select(LearnerProfile.id).where(LearnerProfile.person_id != pid)
            ),
        ),
        "choice_decisions": count_rows(
            session, Choice, (Choice.decided_by_id == pid) & (Choice.person_id != pid)
        ),
        "earlier_tries_closed": count_rows(
            session, Attempt, (Attempt.closed_by_id == pid) & (Attempt.person_id != pid)
        ),
        "step_unlocks": count_rows(
            session, StepUnlock, (StepUnlock.unlocked_by_id == pid) & (StepUnlock.person_id != pid)
        ),
        "groups_created": count_rows(session, StudentGroup, StudentGroup.created_by_id == pid),
    }
