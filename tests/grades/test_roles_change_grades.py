"""People whose role in the course changes keep the LMS's gradebook right: a TA made a student
again gets the level that changed meanwhile, and a teacher looking at the student pages as a
student (Moodle's "Switch role to… Student") gets no grade."""

from __future__ import annotations

from collections.abc import Callable

from lti_app.db import Database
from lti_app.demo.launches import LaunchTweaks
from lti_app.demo.seed import TEACHER
from lti_app.grades.models import OutboxStatus
from lti_app.grades.services import queue_scores
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.scales import update_scale
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from tests.conftest import LtiActions
from tests.courses.frames import lms_of_the_module  # noqa: F401  (this module's own LMS)
from tests.grades.conftest import GradeCourse, outbox_rows

TA_THEN_STUDENT = "user-s02"
CLAIM_TOOL_PLATFORM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TEACHING_ASSISTANT = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
)


def _launch(
    lti: LtiActions, course: GradeCourse, sub: str, roles: list[str], *, moodle: bool = False
) -> str:
    # No roster claim: a teacher's launch would sync the roster in the background, and these
    # tests say themselves what the roster lists, and when.
    launched = lti.launch(
        sub,
        context_id=course.lms_context_id,
        roles=roles,
        include_nrps=False,
        tweaks=LaunchTweaks(claims={CLAIM_TOOL_PLATFORM: {"product_family_code": "moodle"}})
        if moodle
        else LaunchTweaks(),
    )
    assert launched.response.status_code == 200, launched.text[:2000]
    return launched.text


def _roster_lists(course: GradeCourse, db: Database, roles: dict[str, str]) -> None:
    members = [
        Member(sub, (role,), "Active", None, None, None, None, None) for sub, role in roles.items()
    ]
    with db.begin() as s:
        apply_members(
            s, platform_id=course.platform_id, context_id=course.context_id, members=members
        )


def test_a_ta_made_a_student_again_by_a_launch_gets_their_current_level_in_the_lms(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    course.record(1)
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()

    assert 'role-badge">Teacher<' in _launch(
        lti, course, TA_THEN_STUDENT, [INSTRUCTOR, TEACHING_ASSISTANT]
    )
    with db.begin() as s:
        queue_scores(
            s, update_scale(s, context_id=course.context_id, method=CalculationMethod.HIGHEST)
        )
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.SKIPPED] == 1  # the TA's: not one of the class now

    assert 'role-badge">Student<' in _launch(lti, course, TA_THEN_STUDENT, [LEARNER])
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()  # Proficient for them too, not the Developing of before

    before = len(outbox_rows(db, course.context_id))
    _launch(lti, course, TA_THEN_STUDENT, [LEARNER])  # an ordinary launch queues nothing
    assert len(outbox_rows(db, course.context_id)) == before


def test_a_listed_ta_made_a_student_again_gets_their_current_level_once_the_roster_agrees(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    course.record(1)
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()
    others = {sub: LEARNER for sub in course.students if sub != TA_THEN_STUDENT}
    teacher = {TEACHER.user_id: INSTRUCTOR}
    _roster_lists(course, db, {**teacher, **others, TA_THEN_STUDENT: TEACHING_ASSISTANT})
    _launch(lti, course, TA_THEN_STUDENT, [INSTRUCTOR, TEACHING_ASSISTANT])
    with db.begin() as s:
        queue_scores(
            s, update_scale(s, context_id=course.context_id, method=CalculationMethod.HIGHEST)
        )
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.SKIPPED] == 1

    # A student in the LMS again: their first launch cannot tell that from a teacher looking
    # at the student pages, so it shows those; the roster that lists them a student settles it.
    assert 'role-badge">Student<' in _launch(lti, course, TA_THEN_STUDENT, [LEARNER])
    _roster_lists(course, db, {**teacher, **others, TA_THEN_STUDENT: LEARNER})
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()


def test_a_teacher_looking_at_the_student_pages_as_a_student_gets_no_grade_in_the_lms(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    """Moodle's "Switch role to… Student" launches the teacher's own account as a Learner."""
    course = make_course(students=1, competencies=1)
    _roster_lists(
        course, db, {TEACHER.user_id: INSTRUCTOR, **dict.fromkeys(course.students, LEARNER)}
    )
    _launch(lti, course, TEACHER.user_id, [INSTRUCTOR])
    assert 'role-badge">Student<' in _launch(lti, course, TEACHER.user_id, [LEARNER], moodle=True)

    course.students[TEACHER.user_id] = course.teacher_id  # a level for them, from their pages
    course.record(3)
    queued_for = {row.person_id for row in outbox_rows(db, course.context_id)}
    assert course.teacher_id not in queued_for
    course.drain_until_settled(course.worker())
    assert course.counts()[OutboxStatus.FAILED] == 0
