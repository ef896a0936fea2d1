"""Canvas's Test Student (Student View: Learner + TestUser) is the teacher trying the course:
its levels go to no gradebook, whether the launch or the roster said what it is."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update

from lti_app.db import Database
from lti_app.demo.seed import STUDENTS
from lti_app.grades.models import OutboxStatus
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Membership
from tests.conftest import LtiActions
from tests.grades.conftest import GradeCourse, outbox_rows

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"
REAL, PREVIEW = STUDENTS[0].user_id, STUDENTS[1].user_id


def _queued_for(course: GradeCourse, db: Database) -> set[int]:
    return {row.person_id for row in outbox_rows(db, course.context_id)}


def test_the_test_student_of_a_launch_gets_no_score_queued(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    launched = lti.launch(PREVIEW, context_id=course.lms_context_id, roles=[LEARNER, TEST_USER])
    assert launched.response.status_code == 200, launched.text[:2000]
    course.record(3)
    assert _queued_for(course, db) == {course.students[REAL]}


def test_the_test_student_of_a_roster_gets_no_score_queued(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    members = [
        Member(REAL, (LEARNER,), "Active", None, None, None, None, None),
        Member(PREVIEW, (LEARNER, TEST_USER), "Active", None, None, None, None, None),
    ]
    with db.begin() as s:
        apply_members(
            s, platform_id=course.platform_id, context_id=course.context_id, members=members
        )
    course.record(3)
    assert _queued_for(course, db) == {course.students[REAL]}


def test_a_score_queued_before_the_lms_named_the_test_student_is_not_sent(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    """Scores queued before the upgrade (or the sync) that marked the Test Student."""
    course = make_course(students=2, competencies=1)
    course.record(3)
    assert _queued_for(course, db) == set(course.students.values())
    with db.begin() as s:
        s.execute(
            update(Membership)
            .where(
                Membership.context_id == course.context_id,
                Membership.person_id == course.students[PREVIEW],
            )
            .values(is_preview=True)
        )
    course.drain_until_settled(course.worker())
    sent = {
        row.person_id: row.status
        for row in outbox_rows(db, course.context_id)
        if row.status in {OutboxStatus.SENT, OutboxStatus.SKIPPED}
    }
    assert sent == {
        course.students[REAL]: OutboxStatus.SENT,
        course.students[PREVIEW]: OutboxStatus.SKIPPED,
    }
