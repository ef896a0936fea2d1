"""Everything Pathways keeps about one person, to hand over (export) or to delete (erase).

A person is one LMS user of one registration (issuer, client id, sub). What is keyed to them
is theirs: profile, goals and check-ins on it, evidence and current levels, choices and earlier
tries at steps, unlocked steps, group places, reflection, memberships, open sessions and queued
scores. What they wrote as a teacher about other students is those students' record: the export
only counts it (`people.authored`), and the erasure (`people.erasure`) keeps it without its
author.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.db import utcnow
from lti_app.grades.models import LineItem, ScoreOutbox
from lti_app.insights.models import StudentGroup, StudentGroupMember
from lti_app.learners.models import CheckIn, Goal, LearnerProfile
from lti_app.mastery.models import (
    IN_ORDER_OBSERVED,
    Evidence,
    EvidenceRevision,
    StudentCompetencyLevel,
)
from lti_app.pathways.models import Attempt, Choice, Option, Pathway, Step, StepUnlock
from lti_app.people.authored import authored_counts
from lti_app.reports.models import StudentReflection
from lti_app.tool.models import Context, LaunchSession, Membership, Person, Platform

EXPORT_FORMAT = 1
"""Bumped when the export's shape changes, so a school's scripts can tell."""

# The columns each part of the export shows (ids that mean nothing outside Pathways left out).
PERSON_FIELDS = (
    "sub", "name", "given_name", "family_name", "email", "picture", "created_at", "updated_at",
)  # fmt: skip
MEMBERSHIP_FIELDS = (
    "roles", "status", "is_teacher", "is_learner", "is_preview", "first_launch_at",
    "last_launch_at", "created_at", "updated_at",
)  # fmt: skip
PROFILE_FIELDS = (
    "interests", "career_clusters", "career_goal_text", "preferred_modalities",
    "preferences_text", "strengths", "needs_and_supports", "non_academic_notes", "teacher_notes",
    "created_at", "updated_at",
)  # fmt: skip
CORRECTION_FIELDS = (
    "action", "changed_at", "old_points", "new_points", "old_note", "new_note",
    "old_observed_at", "new_observed_at", "old_observed_on", "new_observed_on",
)  # fmt: skip
CHOICE_FIELDS = (
    "status", "submission_note", "submission_url", "teacher_feedback", "chosen_at",
    "approved_at", "started_at", "submitted_at", "returned_at", "done_at",
)  # fmt: skip
ATTEMPT_FIELDS = (
    "number", "submission_note", "submission_url", "teacher_feedback", "chosen_at",
    "started_at", "submitted_at", "done_at",
)  # fmt: skip
SCORE_FIELDS = (
    "score_given", "score_maximum", "level_name", "status", "scored_at", "sent_at",
)  # fmt: skip


def _plain(value: Any) -> Any:
    """A column value as JSON can hold it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _fields(row: Any, *names: str) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in names}


def find_person(session: Session, *, platform: Platform, sub: str) -> Person | None:
    """The person a registration knows by this LMS user id (sub), if any."""
    return session.scalar(
        select(Person).where(Person.platform_id == platform.id, Person.sub == sub)
    )


SEARCH_LIMIT = 50


def search_people(session: Session, *, platform: Platform, words: str) -> list[Person]:
    """People of a platform whose name, email or sub contains the words, in any case.

    Compared in Python: SQLite's LIKE and lower() fold only ASCII letters, and names are not
    ASCII ("NÚÑEZ" must find Núñez). A command run now and then can read one platform's people.
    """
    wanted = words.casefold()
    people = session.scalars(
        select(Person)
        .where(Person.platform_id == platform.id)
        .order_by(Person.family_name, Person.name, Person.sub)
    )
    found = (
        p
        for p in people
        if any(
            wanted in value.casefold()
            for value in (p.name, p.given_name, p.family_name, p.email, p.sub)
        )
    )
    return list(islice(found, SEARCH_LIMIT))


def _names(session: Session, ids: Iterable[int | None]) -> dict[int | None, str]:
    """Display names of the teachers who authored entries; an erased author has none."""
    wanted = {i for i in ids if i is not None}
    found: dict[int | None, str] = {None: ""}
    if wanted:
        found.update(
            (p.id, p.display_name)
            for p in session.scalars(select(Person).where(Person.id.in_(wanted)))
        )
    return found


class _Courses:
    """The export's courses, each filled in as the person's rows are read."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._by_id: dict[int, dict[str, Any]] = {}

    def of(self, context_id: int) -> dict[str, Any]:
        course = self._by_id.get(context_id)
        if course is None:
            context = self._session.get(Context, context_id)
            course = self._by_id[context_id] = {
                "context_id": context.context_id if context else "",
                "title": context.title if context else "",
                "label": context.label if context else "",
                "membership": None,
                "profile": None,
                "goals": [],
                "check_ins": [],
                "evidence": [],
                "levels": [],
                "choices": [],
                "earlier_tries": [],
                "unlocked_steps": [],
                "groups": [],
                "reflection": None,
                "scores": [],
            }
        return course

    def all(self) -> list[dict[str, Any]]:
        return [self._by_id[k] for k in sorted(self._by_id)]


def export_person(session: Session, person: Person) -> dict[str, Any]:
    """Everything keyed to one person, as plain JSON values, grouped by course.

    Private teacher notes and private check-ins are included: they are about this person.
    Other people appear only as the names of the teachers who wrote an entry.
    """
    pid = person.id
    platform = session.get(Platform, person.platform_id)
    courses = _Courses(session)

    for m in session.scalars(select(Membership).where(Membership.person_id == pid)):
        courses.of(m.context_id)["membership"] = _fields(m, *MEMBERSHIP_FIELDS)

    profiles = session.scalars(select(LearnerProfile).where(LearnerProfile.person_id == pid)).all()
    profile_ids = [p.id for p in profiles]
    goals = session.scalars(
        select(Goal).where(Goal.profile_id.in_(profile_ids)).order_by(Goal.id)
    ).all()
    check_ins = session.scalars(
        select(CheckIn).where(CheckIn.profile_id.in_(profile_ids)).order_by(CheckIn.id)
    ).all()
    evidence = session.scalars(
        select(Evidence).where(Evidence.person_id == pid).order_by(*IN_ORDER_OBSERVED)
    ).all()
    revisions = session.scalars(
        select(EvidenceRevision)
        .where(EvidenceRevision.evidence_id.in_([e.id for e in evidence]))
        .order_by(EvidenceRevision.id)
    ).all()
    choices = session.execute(
        select(Choice, Pathway.title, Step.title, Option.title)
        .join(Step, Step.id == Choice.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .join(Option, Option.id == Choice.option_id)
        .where(Choice.person_id == pid)
        .order_by(Choice.id)
    ).all()
    attempts = session.execute(
        select(Attempt, Pathway.title, Step.title, Option.title, Evidence)
        .join(Step, Step.id == Attempt.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .join(Option, Option.id == Attempt.option_id)
        .outerjoin(Evidence, Evidence.id == Attempt.evidence_id)
        .where(Attempt.person_id == pid)
        .order_by(Attempt.step_id, Attempt.number)
    ).all()
    unlocks = session.execute(
        select(StepUnlock, Pathway.title, Step.title)
        .join(Step, Step.id == StepUnlock.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(StepUnlock.person_id == pid)
        .order_by(StepUnlock.id)
    ).all()
    names = _names(
        session,
        [
            *(g.created_by_id for g in goals),
            *(c.author_id for c in check_ins),
            *(e.recorded_by_id for e in evidence),
            *(r.changed_by_id for r in revisions),
            *(c.decided_by_id for c, *_ in choices),
            *(a.closed_by_id for a, *_ in attempts),
            *(u.unlocked_by_id for u, *_ in unlocks),
        ],
    )

    profile_context = {p.id: p.context_id for p in profiles}
    for p in profiles:
        courses.of(p.context_id)["profile"] = _fields(p, *PROFILE_FIELDS)
    for g in goals:
        courses.of(profile_context[g.profile_id])["goals"].append(
            _fields(g, "text", "target_date", "status", "created_at", "updated_at")
            | {"set_by": names.get(g.created_by_id, "")}
        )
    for c in check_ins:
        courses.of(profile_context[c.profile_id])["check_ins"].append(
            _fields(c, "held_on", "note", "next_steps", "is_private", "created_at")
            | {"teacher": names.get(c.author_id, "")}
        )

    def competency(competency_id: int) -> dict[str, str]:
        found = session.get(Competency, competency_id)  # the same few, from the identity map
        return {"competency_code": found.code, "competency": found.title} if found else {}

    corrections: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in revisions:
        corrections[r.evidence_id].append(
            _fields(r, *CORRECTION_FIELDS) | {"changed_by": names.get(r.changed_by_id, "")}
        )
    for e in evidence:
        courses.of(e.context_id)["evidence"].append(
            competency(e.competency_id)
            | _fields(
                e,
                "observed_on",
                "observed_at",
                "level_name",
                "points",
                "source",
                "note",
                "withdrawn_at",
            )
            | {"recorded_by": names.get(e.recorded_by_id, ""), "corrections": corrections[e.id]}
        )

    for level, code, title in session.execute(
        select(StudentCompetencyLevel, Competency.code, Competency.title)
        .join(Competency, Competency.id == StudentCompetencyLevel.competency_id)
        .where(StudentCompetencyLevel.person_id == pid)
        .order_by(StudentCompetencyLevel.id)
    ):
        courses.of(level.context_id)["levels"].append(
            {"competency_code": code, "competency": title}
            | _fields(
                level,
                "level_name",
                "score",
                "is_mastered",
                "evidence_count",
                "last_evidence_at",
                "last_evidence_on",
            )
        )

    for choice, pathway, step, option in choices:
        courses.of(choice.context_id)["choices"].append(
            {"pathway": pathway, "step": step, "option": option}
            | _fields(choice, *CHOICE_FIELDS)
            | {"decided_by": names.get(choice.decided_by_id, "")}
        )
    for attempt, pathway, step, option, closing in attempts:
        courses.of(attempt.context_id)["earlier_tries"].append(
            {"pathway": pathway, "step": step, "option": option}
            | _fields(attempt, *ATTEMPT_FIELDS)
            | {"closed_by": names.get(attempt.closed_by_id, "")}
            | {
                "closing_evidence": _fields(closing, "observed_on", "level_name", "note")
                if closing
                else None
            }
        )
    for unlock, pathway, step in unlocks:
        courses.of(unlock.context_id)["unlocked_steps"].append(
            {"pathway": pathway, "step": step, "unlocked_at": _plain(unlock.unlocked_at)}
            | {"unlocked_by": names.get(unlock.unlocked_by_id, "")}
        )

    for place, group_name in session.execute(
        select(StudentGroupMember, StudentGroup.name)
        .join(StudentGroup, StudentGroup.id == StudentGroupMember.group_id)
        .where(StudentGroupMember.person_id == pid)
        .order_by(StudentGroupMember.id)
    ):
        courses.of(place.context_id)["groups"].append(
            {"group": group_name} | _fields(place, "added_at", "removed_at")
        )
    for reflection in session.scalars(
        select(StudentReflection).where(StudentReflection.person_id == pid)
    ):
        courses.of(reflection.context_id)["reflection"] = _fields(
            reflection, "text", "created_at", "updated_at"
        )
    for score, column in session.execute(
        select(ScoreOutbox, LineItem.label)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .where(ScoreOutbox.person_id == pid)
        .order_by(ScoreOutbox.id)
    ):
        courses.of(score.context_id)["scores"].append(
            {"gradebook_column": column}
            | competency(score.competency_id)
            | _fields(score, *SCORE_FIELDS)
        )

    sessions = session.scalars(
        select(LaunchSession)
        .where(LaunchSession.person_id == pid)
        .order_by(LaunchSession.created_at)
    ).all()
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _plain(utcnow()),
        "person": {
            "issuer": platform.issuer if platform else "",
            "client_id": platform.client_id if platform else "",
        }
        | _fields(person, *PERSON_FIELDS),
        "courses": courses.all(),
        "launch_sessions": [
            {"course": courses.of(s.context_id)["context_id"] if s.context_id else None}
            | _fields(s, "role", "created_at", "expires_at")
            for s in sessions
        ],
        "written_about_others": authored_counts(session, person),
    }
