"""Teachers in the roster: a sync asks the LMS for the whole membership, so a teacher the LMS
removed from a course (or no longer lists as teaching it) stops teaching it in Pathways too,
and the Students page counts only the class's students."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.seed import SECOND_TEACHER, STUDENTS, TEACHER, Course, Enrollment, Person, Role
from lti_app.roster.client import NrpsClient
from lti_app.roster.jobs import SyncResult, sync_roster
from lti_app.roster.models import RosterSync, SyncStatus
from lti_app.tool.models import Membership, MembershipStatus
from lti_app.tool.models import Person as PersonRow
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, frame
from tests.roster.conftest import RosterCourse, set_enrollments

LEFT_COURSE = "no longer a member of this course in the LMS"


def _sync(db: Database, nrps: NrpsClient, course: RosterCourse) -> SyncResult:
    """A sync nobody's launch started (the CLI's, or another teacher's)."""
    deadline = time.monotonic() + 20
    while (synced := sync_roster(db, nrps, context_id=course.context_id)).skipped:
        # A teacher's launch starts a sync in the background: this one waits its turn.
        assert time.monotonic() < deadline, "the background roster sync never finished"
        time.sleep(0.05)
    assert synced.ok, synced.message
    return synced


def _wait_for_launch_sync(db: Database, course: RosterCourse) -> None:
    deadline = time.monotonic() + 20
    while True:
        with db.session_factory() as session:
            row = session.scalar(
                select(RosterSync).where(RosterSync.context_id == course.context_id)
            )
            if row is not None and row.status is SyncStatus.OK:
                return
        assert time.monotonic() < deadline, "the launch's roster sync never finished"
        time.sleep(0.05)


def _membership(db: Database, course: RosterCourse, user_id: str) -> Membership:
    with db.session_factory() as session:
        row = session.scalar(
            select(Membership)
            .join(PersonRow, PersonRow.id == Membership.person_id)
            .where(Membership.context_id == course.context_id, PersonRow.sub == user_id)
        )
        assert row is not None
        session.expunge(row)
        return row


def _staff_and_students(*staff: Enrollment, students: int = 2) -> tuple[Enrollment, ...]:
    return (*staff, *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:students]))


def _open(
    tool_server: ToolServer, lti: LtiActions, course: RosterCourse, **kwargs: object
) -> Frame:
    return frame(
        lti.launch(TEACHER.user_id, context_id=course.lms_context_id, **kwargs), tool_server.url
    )


def _copy_sources(teacher: Frame) -> str:
    page = teacher.get("/competencies/copy")
    assert page.status_code == 200
    return page.text


@pytest.mark.parametrize("now", ["removed", "observer"])
def test_a_teacher_the_lms_no_longer_lists_as_teaching_cannot_copy_from_that_course(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
    now: str,
) -> None:
    """She taught last term's course with a colleague; the LMS took her off it (or left her
    only as an observer). Her other course no longer offers it to copy pathways from."""
    old, current = make_roster_course(2), make_roster_course(2)
    colleague = Enrollment(SECOND_TEACHER.user_id, Role.INSTRUCTOR)
    set_enrollments(
        old, _staff_and_students(Enrollment(TEACHER.user_id, Role.INSTRUCTOR), colleague)
    )
    in_old = _open(tool_server, lti, old)
    _wait_for_launch_sync(db, old)  # the roster has listed her: a later one may end her
    teacher = _open(tool_server, lti, current)
    offered = f'<option value="{old.context_id}">{old.course.title} '  # then what tells it apart
    assert offered in _copy_sources(teacher)

    left = () if now == "removed" else (Enrollment(TEACHER.user_id, Role.MENTOR),)
    set_enrollments(old, _staff_and_students(*left, colleague))
    synced = _sync(db, nrps, old)
    assert synced.members == 2  # students: the colleague is not counted

    mine = _membership(db, old, TEACHER.user_id)
    assert not (mine.status is MembershipStatus.ACTIVE and mine.is_teacher)
    if now == "removed":
        assert synced.teachers_deactivated == 1
        assert mine.status is MembershipStatus.INACTIVE
    else:
        assert mine.roles == [str(Role.MENTOR)]  # updated as the LMS lists her now
    assert _membership(db, old, SECOND_TEACHER.user_id).status is MembershipStatus.ACTIVE

    # A new launch in her current course, as she would open it tomorrow.
    teacher = _open(tool_server, lti, current)
    assert f'<option value="{old.context_id}">' not in _copy_sources(teacher)
    refused = teacher.post("/competencies/copy", {"source_context_id": str(old.context_id)})
    assert refused.status_code == 404, refused.text[:3000]
    # Her open session in the old course does not go on teaching it either.
    assert in_old.get("/competencies/").status_code == 403


def test_a_listed_teacher_keeps_teaching_through_her_own_sync_until_another_sync(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    """The roster listed her; the LMS then took her off the course while she was working. The
    sync her own launch or Refresh starts does not end the session she is using; a sync that
    is not hers (the CLI's, a colleague's launch) goes by the roster."""
    course = make_roster_course(2)
    teacher = _open(tool_server, lti, course)
    _wait_for_launch_sync(db, course)
    assert _membership(db, course, TEACHER.user_id).first_listed_at is not None
    set_enrollments(
        course, _staff_and_students(Enrollment(SECOND_TEACHER.user_id, Role.INSTRUCTOR))
    )
    refreshed = teacher.follow(teacher.post("/roster/refresh"))
    assert refreshed.status_code == 200
    assert "Roster updated from the LMS: 2 students." in refreshed.text
    assert teacher.get("/competencies/").status_code == 200
    assert _membership(db, course, TEACHER.user_id).status is MembershipStatus.ACTIVE

    assert _sync(db, nrps, course).teachers_deactivated == 1
    assert _membership(db, course, TEACHER.user_id).status is MembershipStatus.INACTIVE
    answer = teacher.get("/competencies/")
    assert answer.status_code == 403
    assert LEFT_COURSE in answer.text


def test_a_teacher_the_roster_never_lists_keeps_teaching_through_every_sync(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    """The LMS launches her as the course's teacher though its roster never lists her (a
    Moodle teacher given the role on a whole category: not enrolled, no administrator role).
    Her launches are the LMS's word: no sync, hers or another's, ends the page she is on."""
    course = make_roster_course(2)
    set_enrollments(
        course, _staff_and_students(Enrollment(SECOND_TEACHER.user_id, Role.INSTRUCTOR))
    )
    teacher = _open(tool_server, lti, course, roles=[str(Role.INSTRUCTOR)])
    _wait_for_launch_sync(db, course)
    refreshed = teacher.follow(teacher.post("/roster/refresh"))
    assert "Roster updated from the LMS: 2 students." in refreshed.text

    # Syncs that are not hers: the CLI's, her colleague's launch.
    assert _sync(db, nrps, course).teachers_deactivated == 0
    assert _sync(db, nrps, course).teachers_deactivated == 0
    mine = _membership(db, course, TEACHER.user_id)
    assert (mine.status, mine.is_teacher, mine.first_listed_at) == (
        MembershipStatus.ACTIVE,
        True,
        None,
    )
    assert teacher.get("/competencies/").status_code == 200
    assert _membership(db, course, SECOND_TEACHER.user_id).status is MembershipStatus.ACTIVE


def test_an_lms_administrator_teaching_without_enrolment_keeps_teaching(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    """Moodle launches a site administrator as Instructor of any course; its roster lists
    enrolments only. Another teacher's sync must not end the administrator's teaching."""
    course = make_roster_course(2)
    set_enrollments(
        course, _staff_and_students(Enrollment(SECOND_TEACHER.user_id, Role.INSTRUCTOR))
    )
    admin_roles = [str(Role.INSTRUCTOR), str(Role.INSTITUTION_ADMIN), str(Role.SYSTEM_ADMIN)]
    teacher = _open(tool_server, lti, course, roles=admin_roles)
    assert _sync(db, nrps, course).teachers_deactivated == 0
    mine = _membership(db, course, TEACHER.user_id)
    assert (mine.status, mine.is_teacher) == (MembershipStatus.ACTIVE, True)
    assert teacher.get("/competencies/").status_code == 200


def test_a_roster_that_lists_no_teacher_at_all_leaves_the_teachers_alone(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    """An LMS that leaves its staff out of the roster says nothing of who teaches."""
    course = make_roster_course(2)
    _open(tool_server, lti, course)
    set_enrollments(course, _staff_and_students())
    assert _sync(db, nrps, course).teachers_deactivated == 0
    assert _membership(db, course, TEACHER.user_id).status is MembershipStatus.ACTIVE


def test_the_students_page_counts_students_not_the_test_student_or_teachers(
    lti: LtiActions, db: Database, tool_server: ToolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three students, two teachers and Canvas's Test Student: the page says "3 students",
    the number the teacher compares with the class in the LMS."""
    test_student = Person("user-test-student", "Test", "Student", None)
    monkeypatch.setitem(seed.PEOPLE, test_student.user_id, test_student)
    lms_context_id = f"course-count-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(
        seed.COURSES,
        lms_context_id,
        Course(
            lms_context_id,
            "COUNT",
            "Counting",
            (
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                Enrollment(SECOND_TEACHER.user_id, Role.INSTRUCTOR),
                Enrollment(test_student.user_id, Role.LEARNER, preview=True),
                *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:3]),
            ),
        ),
    )
    launched = lti.launch(TEACHER.user_id, context_id=lms_context_id)
    teacher = frame(launched, tool_server.url)
    with db.session_factory() as session:
        context_id = lti.course_id(session, lms_context_id)
    course = RosterCourse(lms_context_id, context_id, 0, seed.COURSES[lms_context_id])
    _wait_for_launch_sync(db, course)

    def counted(page: httpx.Response) -> None:
        assert page.status_code == 200
        assert "UTC (3 students)." in page.text
        assert "members" not in page.text
        assert "Test Student" not in page.text

    counted(teacher.get("/roster/"))
    refreshed = teacher.follow(teacher.post("/roster/refresh"))
    assert "Roster updated from the LMS: 3 students." in refreshed.text
    counted(refreshed)
    # One student: said in the singular.
    monkeypatch.setitem(
        seed.COURSES,
        lms_context_id,
        Course(
            lms_context_id,
            "COUNT",
            "Counting",
            (
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                Enrollment(test_student.user_id, Role.LEARNER, preview=True),
                Enrollment(STUDENTS[0].user_id, Role.LEARNER),
            ),
        ),
    )
    refreshed = teacher.follow(teacher.post("/roster/refresh"))
    assert "Roster updated from the LMS: 1 student. 2 no longer listed" in refreshed.text
    assert "UTC (1 student)." in refreshed.text
