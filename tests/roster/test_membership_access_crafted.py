"""Who may still act once the LMS's roster changed: people it dropped from a course (a student,
a teacher it lists as gone) and a teacher it now lists as a student lose their open sessions,
and a new launch from the LMS opens Pathways again."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.demo.seed import STUDENTS, TEACHER, Enrollment, Role
from lti_app.learners.models import Goal
from lti_app.roster import syncing
from lti_app.roster.client import Member, NrpsClient
from lti_app.roster.jobs import sync_roster
from lti_app.roster.models import RosterSync, SyncStatus
from lti_app.tool.models import Membership, MembershipStatus, Person
from tests.conftest import LtiActions, ToolServer
from tests.roster.conftest import RosterCourse, set_enrollments
from tests.security_support import frame_of

LEFT_COURSE = "no longer a member of this course in the LMS"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_numbers = itertools.count(1)


def _sync(db: Database, nrps: NrpsClient, course: RosterCourse) -> None:
    deadline = time.monotonic() + 20
    while (synced := sync_roster(db, nrps, context_id=course.context_id)).skipped:
        # A teacher's launch starts a sync in the background: this one waits its turn.
        assert time.monotonic() < deadline, "the background roster sync never finished"
        time.sleep(0.05)
    assert synced.ok, synced.message


def _wait_for_launch_sync(db: Database, course: RosterCourse) -> None:
    deadline = time.monotonic() + 20
    while True:
        with db.begin() as s:
            status = s.scalar(
                select(RosterSync.status).where(RosterSync.context_id == course.context_id)
            )
        if status is SyncStatus.OK:
            return
        assert time.monotonic() < deadline, "the launch's roster sync never finished"
        time.sleep(0.05)


def _membership(db: Database, course: RosterCourse, user_id: str) -> MembershipStatus:
    with db.begin() as s:
        status = s.scalar(
            select(Membership.status)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.context_id == course.context_id, Person.sub == user_id)
        )
    assert status is not None
    return status


def _competency_codes(db: Database, course: RosterCourse) -> list[str]:
    with db.begin() as s:
        return sorted(
            s.scalars(select(Competency.code).where(Competency.context_id == course.context_id))
        )


# --- 1. people the LMS removed from the course ---------------------------------------------------


def test_a_student_the_roster_drops_is_told_so_until_the_lms_launches_them_again(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    course = make_roster_course(3)
    dropped = STUDENTS[2].user_id
    student = frame_of(tool_server, lti.launch(dropped, context_id=course.lms_context_id))
    assert student.get("/home").status_code == 200

    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:2]),
        ),
    )
    _sync(db, nrps, course)
    assert _membership(db, course, dropped) is MembershipStatus.INACTIVE

    for answer in (
        student.get("/home"),
        student.get("/pathways/"),
        student.post("/profile/goals", {"csrf_token": student.csrf, "text": "Stay on"}),
    ):
        assert answer.status_code == 403, (answer.request.url, answer.status_code)
        assert LEFT_COURSE in answer.text
        assert "Open Pathways again from the LMS" in answer.text
        # The course's own navigation is not offered to someone who left it.
        assert "My pathways" not in answer.text

    # Enrolled again: the LMS's next launch is the proof, and opens Pathways.
    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:3]),
        ),
    )
    again = frame_of(tool_server, lti.launch(dropped, context_id=course.lms_context_id))
    assert "My pathways" in again.page.text
    assert again.get("/home").status_code == 200
    assert _membership(db, course, dropped) is MembershipStatus.ACTIVE
    with db.begin() as s:
        assert s.scalars(select(Goal.text).where(Goal.context_id == course.context_id)).all() == []


@pytest.mark.parametrize("status", ["Inactive", "Deleted"])
def test_a_teacher_the_lms_lists_as_gone_can_no_longer_change_the_course(
    make_roster_course: Callable[..., RosterCourse],
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
    status: str,
) -> None:
    course = make_roster_course(1)
    teacher = frame_of(tool_server, lti.launch(TEACHER.user_id, context_id=course.lms_context_id))
    assert teacher.get("/competencies/").status_code == 200
    # Her launch's sync of the test LMS (which lists her as active) comes first.
    _wait_for_launch_sync(db, course)
    # What a roster sync stores when the LMS lists her enrolment as ended (Moodle: suspended).
    with db.begin() as s:
        syncing.apply_members(
            s,
            platform_id=course.platform_id,
            context_id=course.context_id,
            members=[Member(TEACHER.user_id, (INSTRUCTOR,), status, None, None, None, None, None)],
        )

    page = teacher.get("/competencies/")
    assert page.status_code == 403
    assert LEFT_COURSE in page.text
    added = teacher.post(
        "/competencies/",
        {"csrf_token": teacher.csrf, "code": "GONE.1", "title": "Cells", "kind": "academic"},
    )
    assert added.status_code == 403
    assert LEFT_COURSE in added.text
    assert _competency_codes(db, course) == []

    # The LMS still lists her (the roster was wrong, or she was enrolled again): a launch works.
    back = frame_of(tool_server, lti.launch(TEACHER.user_id, context_id=course.lms_context_id))
    added = back.post(
        "/competencies/",
        {"csrf_token": back.csrf, "code": "BACK.1", "title": "Cells", "kind": "academic"},
    )
    assert added.status_code == 303
    assert _competency_codes(db, course) == ["BACK.1"]


def test_a_teacher_a_learners_only_roster_does_not_list_keeps_her_session(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    course = make_roster_course(2)
    teacher = frame_of(tool_server, lti.launch(TEACHER.user_id, context_id=course.lms_context_id))
    _sync(db, nrps, course)
    assert _membership(db, course, TEACHER.user_id) is MembershipStatus.ACTIVE
    assert teacher.get("/competencies/").status_code == 200


# --- more launch-session probes ------------------------------------------------------------------


def test_a_teacher_the_lms_now_lists_as_a_student_loses_the_teacher_session(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    """Demoted in the LMS (a student teacher back to a student, a TA removed from the staff):
    the open teacher session must not keep teacher pages for the rest of its hour."""
    course = make_roster_course(1)
    teacher = frame_of(tool_server, lti.launch(TEACHER.user_id, context_id=course.lms_context_id))
    assert teacher.get("/competencies/").status_code == 200
    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.LEARNER),
            Enrollment(STUDENTS[0].user_id, Role.LEARNER),
        ),
    )
    _sync(db, nrps, course)

    for answer in (
        teacher.get("/competencies/"),
        teacher.post(
            "/competencies/",
            {"csrf_token": teacher.csrf, "code": "DEMOTED.1", "title": "Cells", "kind": "academic"},
        ),
    ):
        assert answer.status_code == 403
        assert "you no longer teach it" in answer.text
    assert _competency_codes(db, course) == []
    # The LMS's next launch opens Pathways with the role she has now.
    now = frame_of(tool_server, lti.launch(TEACHER.user_id, context_id=course.lms_context_id))
    assert "My pathways" in now.page.text
    assert now.get("/competencies/").status_code == 403
