"""The demo course's content: a whole course from the first launch, seeded once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency, CompetencyKind, CompetencyPrerequisite
from lti_app.demo.content import seed_demo_course
from lti_app.demo.seed import BIOLOGY, STUDENTS, TEACHER
from lti_app.learners.models import Goal, LearnerProfile
from lti_app.mastery.models import Evidence, StudentCompetencyLevel
from lti_app.models import Base
from lti_app.pathways.models import Option, Pathway, Step, StepPrerequisite
from lti_app.pathways.reviewing import pending_for_teacher
from lti_app.progress.services import pathway_overview
from lti_app.roster.services import list_students, teaches_course
from lti_app.tool.models import Context, Membership, Person, Platform

ISSUER = "http://localhost:8001"


@pytest.fixture
def platform(session: Session) -> Platform:
    row = Platform(
        issuer=ISSUER,
        client_id="pathways-demo",
        name="Demo LMS",
        auth_login_url=f"{ISSUER}/auth",
        token_url=f"{ISSUER}/token",
        jwks_url=f"{ISSUER}/jwks",
    )
    session.add(row)
    session.flush()
    return row


@pytest.fixture
def seeded(session: Session, platform: Platform) -> Context:
    seed_demo_course(session, platform)
    context = session.scalar(
        select(Context).where(
            Context.platform_id == platform.id, Context.context_id == BIOLOGY.context_id
        )
    )
    assert context is not None
    return context


def _person(session: Session, platform: Platform, sub: str) -> Person:
    return session.scalars(
        select(Person).where(Person.platform_id == platform.id, Person.sub == sub)
    ).one()


def test_the_course_and_its_roster_are_as_a_roster_sync_leaves_them(
    session: Session, platform: Platform, seeded: Context
) -> None:
    assert (seeded.title, seeded.label) == (BIOLOGY.title, BIOLOGY.label)
    students = list_students(session, context_id=seeded.id)
    assert len(students) == len(STUDENTS) == 30
    teacher = _person(session, platform, TEACHER.user_id)
    assert teacher.name == "Amara Okafor"
    assert teacher.email == TEACHER.email
    assert teaches_course(session, context_id=seeded.id, person_id=teacher.id)
    kai = _person(session, platform, "user-s30")
    assert (kai.name, kai.family_name, kai.email) == ("Kai", "", "")
    memberships = session.scalars(select(Membership).where(Membership.context_id == seeded.id))
    learners = [m for m in memberships if m.is_learner]
    assert len(learners) == 30
    assert all(m.status.value == "active" and not m.is_teacher for m in learners)


def test_the_framework_has_a_hierarchy_prerequisites_and_non_academic_skills(
    session: Session, seeded: Context
) -> None:
    competencies = session.scalars(
        select(Competency).where(Competency.context_id == seeded.id)
    ).all()
    assert 10 <= len(competencies) <= 15
    by_code = {c.code: c for c in competencies}
    assert by_code["CELL.1"].parent_id == by_code["CELL"].id
    non_academic = {c.code for c in competencies if c.kind is CompetencyKind.NON_ACADEMIC}
    assert {"SKL.1", "SKL.2"} <= non_academic
    assert {by_code["SKL.1"].title, by_code["SKL.2"].title} == {"Collaboration", "Work habits"}
    links = session.scalar(
        select(func.count()).where(CompetencyPrerequisite.context_id == seeded.id)
    )
    assert links is not None
    assert links >= 4


def test_pathways_offer_varied_options_and_some_steps_start_locked(
    session: Session, platform: Platform, seeded: Context
) -> None:
    pathways = session.scalars(select(Pathway).where(Pathway.context_id == seeded.id)).all()
    assert [p.title for p in pathways] == ["Cells and life", "Ecosystems"]
    steps = session.scalars(select(Step).where(Step.context_id == seeded.id)).all()
    assert all(3 <= sum(s.pathway_id == p.id for s in steps) <= 4 for p in pathways)
    options = session.scalars(select(Option).where(Option.context_id == seeded.id)).all()
    assert all(sum(o.step_id == s.id for o in options) >= 3 for s in steps)
    assert len({o.modality for o in options}) >= 5
    assert {o.challenge for o in options} == {1, 2, 3}
    assert any(o.requires_approval for o in options)
    assert any(not o.requires_approval for o in options)
    assert {"animals", "sports", "music", "gaming", "cooking"} <= {
        t for o in options for t in o.interest_tags
    }
    assert all(o.career_clusters for o in options if o.requires_approval)
    assert any(o.links for o in options)
    locked = session.scalar(
        select(func.count(func.distinct(StepPrerequisite.step_id))).where(
            StepPrerequisite.step_id.in_([s.id for s in steps])
        )
    )
    assert locked is not None
    assert 0 < locked < len(steps)
    # A student without evidence sees the first steps open and the later ones locked.
    newcomer = _person(session, platform, "user-s24")
    overview = pathway_overview(session, context_id=seeded.id, person_id=newcomer.id)
    states = [[s.unlock.is_unlocked for s in summary.steps] for summary in overview]
    assert states == [[True, False, False, False], [True, False, False]]


def test_students_have_profiles_goals_evidence_and_choices(
    session: Session, platform: Platform, seeded: Context
) -> None:
    profiles = session.scalars(
        select(LearnerProfile).where(LearnerProfile.context_id == seeded.id)
    ).all()
    assert len(profiles) >= 25
    assert len({tuple(p.interests) for p in profiles}) >= 8
    assert sum(1 for p in profiles if p.career_clusters) >= 20
    goals = session.scalar(select(func.count()).where(Goal.context_id == seeded.id))
    assert goals is not None
    assert goals >= 5
    evidence = session.scalars(select(Evidence).where(Evidence.context_id == seeded.id)).all()
    assert len({e.person_id for e in evidence}) >= 15
    days = {e.observed_at.date() for e in evidence}
    assert len(days) >= 5  # spread over the past weeks, so charts have a history
    mastered = session.scalars(
        select(StudentCompetencyLevel).where(
            StudentCompetencyLevel.context_id == seeded.id,
            StudentCompetencyLevel.is_mastered.is_(True),
        )
    ).all()
    assert len({m.person_id for m in mastered}) >= 5
    pending = pending_for_teacher(session, context_id=seeded.id)
    assert {p.kind for p in pending} == {"approval", "submission"}
    # Someone who has mastered cell structure finds the microscope step open.
    jose = _person(session, platform, "user-s01")
    cells = pathway_overview(session, context_id=seeded.id, person_id=jose.id)[0]
    assert cells.done_count == 1
    assert cells.steps[1].unlock.is_unlocked


def _row_counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


@contextmanager
def _writes(session: Session) -> Iterator[list[str]]:
    """Collect every INSERT, UPDATE or DELETE the session's connection runs meanwhile."""
    statements: list[str] = []
    connection = session.connection()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield statements
        session.flush()
    finally:
        event.remove(connection, "before_cursor_execute", record)


def test_seeding_twice_changes_nothing(session: Session, platform: Platform) -> None:
    with _writes(session) as first:
        seed_demo_course(session, platform)
    before = _row_counts(session)
    with _writes(session) as second:
        seed_demo_course(session, platform)
    assert len(first) > 100
    assert second == []
    assert _row_counts(session) == before


def test_seeding_after_launches_keeps_what_the_launches_made(
    session: Session, platform: Platform
) -> None:
    # The course and a student already exist, as after a first launch.
    context = Context(platform_id=platform.id, context_id=BIOLOGY.context_id, title="Bio")
    session.add(context)
    session.flush()
    seed_demo_course(session, platform)
    contexts = session.scalars(select(Context).where(Context.platform_id == platform.id)).all()
    assert [c.id for c in contexts] == [context.id]
    assert context.title == BIOLOGY.title
