"""Seed a course through the domain services, as other requests would, for the insights and
reports pages: two competencies, evidence, goals, and teacher-only data that must not leak."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lti_app.competencies.services import create_competency
from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.services import update_profile
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    lms_of_the_module,  # noqa: F401  (each module: an LMS of its own, see frames.py)
    second_lms,
)
from tests.progress.pages import context_id, person_id, unique, unit_of_work

TEACHER, OTHER_TEACHER = "user-t01", "user-t02"
STUDENTS = ("user-s01", "user-s02", "user-s03")


@dataclass(frozen=True)
class Seeded:
    context_id: int
    teacher_id: int
    students: dict[str, int]
    c1: int
    c2: int
    c1_code: str
    c2_code: str


@pytest.fixture
def seeded(lti: LtiActions, database_url: str) -> Seeded:
    """Biology 9 (of the test module's own LMS, not the run's shared one) with three launched
    students: s01 Proficient on C1 (with a comment), s02 Emerging on C1, s03 no evidence; s01
    has a goal, a SECRET teacher note and a private check-in."""
    lti.launch(TEACHER)
    for sub in STUDENTS:
        lti.launch(sub)
    c1_code, c2_code = unique("C1-"), unique("C2-")
    with unit_of_work(database_url) as s:
        ctx = context_id(s, lti.lms)
        teacher = person_id(s, lti.lms, TEACHER)
        students = {sub: person_id(s, lti.lms, sub) for sub in STUDENTS}
        c1 = create_competency(s, context_id=ctx, code=c1_code, title="Cells and <organelles>")
        c2 = create_competency(s, context_id=ctx, code=c2_code, title="Ecosystems")
        when = datetime.now(UTC) - timedelta(days=2)
        record_evidence(
            s,
            context_id=ctx,
            competency_id=c1.id,
            student_ids=[students["user-s01"]],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="Clear lab report on mitochondria",
            recorded_by_id=teacher,
            observed_at=when,
        )
        record_evidence(
            s,
            context_id=ctx,
            competency_id=c1.id,
            student_ids=[students["user-s02"]],
            points=Decimal(1),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=teacher,
            observed_at=when,
        )
        add_goal(
            s,
            context_id=ctx,
            person_id=students["user-s01"],
            text="Explain photosynthesis to my family",
            target_date=datetime.now(UTC).date() - timedelta(days=3),
            created_by_id=students["user-s01"],
            editor_is_teacher=False,
        )
        update_profile(
            s,
            context_id=ctx,
            person_id=students["user-s01"],
            editor_is_teacher=True,
            teacher_notes="SECRET-NOTE about home",
            needs_and_supports="SECRET-NEEDS extra time",
        )
        add_check_in(
            s,
            context_id=ctx,
            person_id=students["user-s01"],
            author_id=teacher,
            held_on=datetime.now(UTC).date(),
            note="SECRET-PRIVATE talk",
            is_private=True,
        )
        add_check_in(
            s,
            context_id=ctx,
            person_id=students["user-s01"],
            author_id=teacher,
            held_on=datetime.now(UTC).date(),
            note="Shared talk about labs",
            next_steps="Read chapter 4 together",
        )
        return Seeded(ctx, teacher, students, c1.id, c2.id, c1_code, c2_code)


@dataclass(frozen=True)
class FreshCourse:
    """A course of its own LMS: its teacher and one launched student, no competencies yet."""

    lti: LtiActions
    context_id: int
    teacher_id: int
    student_id: int


@pytest.fixture
def fresh_course(tool_server: ToolServer, database_url: str) -> Iterator[FreshCourse]:
    """Biology 9 on a second LMS, so a test may change its scale (the calculation method) or
    framework without touching the course other tests share."""
    with second_lms(tool_server, database_url) as running:
        lti = LtiActions(running, tool_server)
        try:
            lti.launch(TEACHER)
            lti.launch("user-s01")
            with unit_of_work(database_url) as s:
                course = FreshCourse(
                    lti,
                    context_id(s, running),
                    person_id(s, running, TEACHER),
                    person_id(s, running, "user-s01"),
                )
            yield course
        finally:
            lti.close()
