"""A teacher who looks at the course as a student (Moodle's "Switch role to… Student" launches
the teacher's own account as a plain Learner) sees the student pages without becoming one of
the class or losing the teacher pages open in another tab; a real demotion in the LMS is the
roster's to apply."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.demo.launches import LaunchTweaks
from lti_app.demo.seed import STUDENTS, TEACHER, Enrollment, Role
from lti_app.roster.client import Member, NrpsClient
from lti_app.roster.jobs import sync_roster
from lti_app.roster.services import list_students
from lti_app.roster.syncing import apply_members
from lti_app.tool.launch import ValidatedLaunch
from lti_app.tool.messages import CLAIM
from lti_app.tool.models import Context, Deployment, Membership
from lti_app.tool.services import sync_launch
from tests.conftest import LtiActions, ToolServer
from tests.domain_fixtures import make_platform
from tests.roster.conftest import RosterCourse, set_enrollments
from tests.security_support import frame_of

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
COURSE_ID = "moodle-course-7"
FACULTY = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"
CLAIM_TOOL_PLATFORM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"
MOODLE = {"product_family_code": "moodle", "guid": "moodle.example.edu"}
CANVAS = {"product_family_code": "canvas", "guid": "canvas.example.edu"}


def _sync(db: Database, nrps: NrpsClient, course: RosterCourse) -> None:
    deadline = time.monotonic() + 20
    while (synced := sync_roster(db, nrps, context_id=course.context_id)).skipped:
        # A teacher's launch starts a sync in the background: this one waits its turn.
        assert time.monotonic() < deadline, "the background roster sync never finished"
        time.sleep(0.05)
    assert synced.ok, synced.message


def _class_list(db: Database, course: RosterCourse) -> set[str]:
    with db.session_factory() as s:
        return {student.name for student in list_students(s, context_id=course.context_id)}


def test_a_teacher_switching_role_to_student_sees_the_student_pages_and_still_teaches(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    course = make_roster_course(2)
    teacher = frame_of(tool_server, lti.launch(TEACHER.user_id, context_id=course.lms_context_id))
    _sync(db, nrps, course)  # the roster lists her as the course's teacher
    class_list = {STUDENTS[0].name, STUDENTS[1].name}
    assert _class_list(db, course) == class_list

    as_student = lti.launch(
        TEACHER.user_id,
        context_id=course.lms_context_id,
        roles=[LEARNER, FACULTY],
        tweaks=LaunchTweaks(claims={CLAIM_TOOL_PLATFORM: MOODLE}),
    )
    assert as_student.response.status_code == 200, as_student.text[:2000]
    assert 'role-badge">Student<' in as_student.text

    assert _class_list(db, course) == class_list  # not one of her class
    students_page = teacher.get("/roster/")
    assert students_page.status_code == 200, students_page.text[:2000]  # her tab still teaches
    assert TEACHER.name not in students_page.text.split("<main", 1)[-1]

    # Demoted in the LMS for real: the next roster sync lists her as a student.
    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.LEARNER),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:2]),
        ),
    )
    _sync(db, nrps, course)
    assert _class_list(db, course) == {*class_list, TEACHER.name}
    refused = teacher.get("/roster/")
    assert refused.status_code == 403
    assert "you no longer teach it" in refused.text


def _launch(
    session: Session, platform_id: int, sub: str, roles: list[str], lms: dict[str, str] = MOODLE
) -> None:
    deployment = session.scalar(select(Deployment).where(Deployment.platform_id == platform_id))
    if deployment is None:
        deployment = Deployment(platform_id=platform_id, deployment_id="deployment-1")
        session.add(deployment)
        session.flush()
    claims: dict[str, Any] = {
        "sub": sub,
        CLAIM + "message_type": "LtiResourceLinkRequest",
        CLAIM + "roles": roles,
        CLAIM + "context": {"id": COURSE_ID, "title": "Biology"},
        CLAIM_TOOL_PLATFORM: lms,
    }
    validated = ValidatedLaunch(deployment.platform, deployment, claims, secrets.token_hex(16))
    sync_launch(session, validated, ttl_seconds=3600)


def _roster(session: Session, platform_id: int, sub: str, *roles: str, moodle: bool) -> None:
    context_id = session.scalar(
        select(Context.id).where(
            Context.platform_id == platform_id, Context.context_id == COURSE_ID
        )
    )
    assert context_id is not None
    session.expire_all()  # the launch wrote with Core statements, as in its own request
    apply_members(
        session,
        platform_id=platform_id,
        context_id=context_id,
        members=[Member(sub, roles, "Active", None, None, None, None, None)],
        keep_launched_teachers=moodle,
    )
    session.flush()


def _membership(session: Session, platform_id: int) -> tuple[bool, bool, bool]:
    session.expire_all()
    row = session.execute(
        select(Membership.is_teacher, Membership.is_learner, Membership.is_preview)
        .join(Context, Context.id == Membership.context_id)
        .where(Context.platform_id == platform_id)
    ).one()
    return (row.is_teacher, row.is_learner, row.is_preview)


def test_on_canvas_a_listed_teachers_learner_launch_is_a_demotion_at_once(
    session: Session,
) -> None:
    """Canvas previews with a Test Student of its own (the TestUser role), never the teacher's
    account: a Learner launch of a teacher there is a real demotion, so she is one of the
    class at once and her open teacher tab stops teaching."""
    platform = make_platform(session)
    _launch(session, platform.id, "canvas-t", [INSTRUCTOR], lms=CANVAS)
    _roster(session, platform.id, "canvas-t", INSTRUCTOR, moodle=False)
    assert _membership(session, platform.id) == (True, False, False)
    _launch(session, platform.id, "canvas-t", [LEARNER], lms=CANVAS)
    assert _membership(session, platform.id) == (False, True, False)


def test_a_teacher_also_enrolled_as_a_student_keeps_teaching_launch_after_launch(
    session: Session,
) -> None:
    """Instructor and Learner in one launch (a Canvas teacher with a student enrolment too, or
    Moodle's multiple roles) is a teacher's launch: never the preview student, and the roster
    listing the same two roles changes nothing back and forth."""
    platform = make_platform(session)
    both = [INSTRUCTOR, LEARNER]
    for lms, moodle in ((CANVAS, False), (MOODLE, True)):
        for _ in range(3):
            _launch(session, platform.id, "two-roles", both, lms=lms)
            assert _membership(session, platform.id) == (True, True, False)
            _roster(session, platform.id, "two-roles", *both, moodle=moodle)
            assert _membership(session, platform.id) == (True, True, False)


def test_a_moodle_roster_demotes_a_teacher_whose_last_launch_was_a_students(
    session: Session,
) -> None:
    """Moodle's roster calls non-editing teachers Learners, so a teacher Pathways knows from her
    launches keeps teaching through it (roster.syncing.roster_understates_teaching); once her
    own launches say Learner too, nothing vouches for the teaching any more."""
    platform = make_platform(session)

    def roster(sub: str, role: str) -> None:
        context_id = session.scalar(
            select(Context.id).where(
                Context.platform_id == platform.id, Context.context_id == COURSE_ID
            )
        )
        assert context_id is not None
        session.expire_all()  # the launch wrote with Core statements, as in its own request
        apply_members(
            session,
            platform_id=platform.id,
            context_id=context_id,
            members=[Member(sub, (role,), "Active", None, None, None, None, None)],
            keep_launched_teachers=True,
        )
        session.flush()

    def membership() -> tuple[bool, bool, bool]:
        row = session.execute(
            select(Membership.is_teacher, Membership.is_learner, Membership.is_preview)
            .join(Context, Context.id == Membership.context_id)
            .where(Context.platform_id == platform.id)
        ).one()
        return (row.is_teacher, row.is_learner, row.is_preview)

    _launch(session, platform.id, "moodle-ta", [INSTRUCTOR])
    roster("moodle-ta", LEARNER)  # a non-editing teacher, as Moodle lists one
    assert membership() == (True, False, False)

    _launch(session, platform.id, "moodle-ta", [LEARNER])  # switched role, or demoted
    assert membership() == (True, True, True)  # a teacher looking at the student pages
    roster("moodle-ta", LEARNER)
    assert membership() == (False, True, False)  # one of the class


def test_a_moodle_teacher_no_roster_lists_still_only_looks_when_switching_to_student(
    session: Session,
) -> None:
    """A site admin teaching unenrolled, a category teacher, a Moodle with the roster service
    off: no roster ever lists them, and their switch to Student is still only a look."""
    platform = make_platform(session)
    _launch(session, platform.id, "site-admin", [INSTRUCTOR])
    _launch(session, platform.id, "site-admin", [LEARNER])
    assert _membership(session, platform.id) == (True, True, True)
    _launch(session, platform.id, "site-admin", [INSTRUCTOR])
    assert _membership(session, platform.id) == (True, False, False)


@pytest.mark.parametrize(
    "roles",
    [[], ["http://purl.imsglobal.org/vocab/lis/v2/membership#Member"], ["urn:lti:role:ims/x"]],
    ids=["no-roles", "member", "unknown-urn"],
)
def test_a_launch_with_no_role_pathways_acts_on_leaves_a_student_in_the_class(
    session: Session, roles: list[str]
) -> None:
    """Empty or unknown roles land on the guest page and say nothing about the membership: the
    student the roster listed stays one of the class (listed, counted, graded)."""
    platform = make_platform(session)
    _launch(session, platform.id, "listed-student", [LEARNER], lms=CANVAS)
    _roster(session, platform.id, "listed-student", LEARNER, moodle=False)
    _launch(session, platform.id, "listed-student", roles, lms=CANVAS)
    assert _membership(session, platform.id) == (False, True, False)
