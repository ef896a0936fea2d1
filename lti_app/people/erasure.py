"""Erasing a person: every row keyed to them goes, what they wrote about others stays without
its author (see `people.services` for what is whose)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.grades.models import ScoreOutbox
from lti_app.insights.models import StudentGroupMember
from lti_app.learners.models import CheckIn, Goal, LearnerProfile
from lti_app.mastery.models import Evidence, EvidenceRevision, StudentCompetencyLevel
from lti_app.pathways.models import Attempt, Choice, StepUnlock
from lti_app.people.authored import authored_counts, count_rows
from lti_app.reports.models import StudentReflection
from lti_app.tool.models import LaunchSession, Membership, Person


@dataclass(frozen=True)
class Erasure:
    """What erasing a person deleted, and what it kept of theirs about others."""

    deleted: dict[str, int]
    kept_without_author: dict[str, int]


def erase_person(session: Session, person: Person) -> Erasure:
    """Delete a person and every row keyed to them; keep what they wrote about others.

    The database does the deleting (each table's person_id is ON DELETE CASCADE); the
    authored entries of other students keep their content and lose the author (SET NULL),
    so a teacher's erasure never takes a student's evidence or goals with it.
    """
    pid = person.id
    profile_ids = select(LearnerProfile.id).where(LearnerProfile.person_id == pid)
    own_evidence = select(Evidence.id).where(Evidence.person_id == pid)
    deleted = {
        "memberships": count_rows(session, Membership, Membership.person_id == pid),
        "profiles": count_rows(session, LearnerProfile, LearnerProfile.person_id == pid),
        "goals": count_rows(session, Goal, Goal.profile_id.in_(profile_ids)),
        "check_ins": count_rows(session, CheckIn, CheckIn.profile_id.in_(profile_ids)),
        "evidence": count_rows(session, Evidence, Evidence.person_id == pid),
        "evidence_corrections": count_rows(
            session, EvidenceRevision, EvidenceRevision.evidence_id.in_(own_evidence)
        ),
        "levels": count_rows(
            session, StudentCompetencyLevel, StudentCompetencyLevel.person_id == pid
        ),
        "choices": count_rows(session, Choice, Choice.person_id == pid),
        "earlier_tries": count_rows(session, Attempt, Attempt.person_id == pid),
        "unlocked_steps": count_rows(session, StepUnlock, StepUnlock.person_id == pid),
        "group_places": count_rows(
            session, StudentGroupMember, StudentGroupMember.person_id == pid
        ),
        "reflections": count_rows(session, StudentReflection, StudentReflection.person_id == pid),
        "queued_scores": count_rows(session, ScoreOutbox, ScoreOutbox.person_id == pid),
        "launch_sessions": count_rows(session, LaunchSession, LaunchSession.person_id == pid),
    }
    kept = {k: n for k, n in authored_counts(session, person).items() if n}
    session.execute(delete(Person).where(Person.id == pid))
    session.expunge(person)
    return Erasure(deleted={k: n for k, n in deleted.items() if n}, kept_without_author=kept)
