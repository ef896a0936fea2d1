"""Canvas's Test Student (Student View: Learner + TestUser) is the teacher trying the course:
its levels go to no gradebook, whether the launch or the roster said what it is."""

from __future__ import annotations

from collections.abc import Callable

from lti_app.db import Database
from lti_app.demo.seed import STUDENTS
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
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
