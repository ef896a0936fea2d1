"""When the roster and the launches disagree: a launch is the LMS vouching for a person right
now, and a roster sync must not undo it where the LMS's roster is the one that is behind or
says less (Moodle's non-editing teachers; a student enrolled while a sync was under way)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.seed import STUDENTS, TEACHER, Enrollment, Role
from lti_app.roster import services, syncing
from lti_app.roster.client import NrpsClient
from lti_app.roster.jobs import sync_roster
from lti_app.tool.models import (
    Context,
    Membership,
    MembershipStatus,
    Person,
    Platform,
)
from tests.conftest import LtiActions, ToolServer
from tests.roster.conftest import RosterCourse, set_enrollments
from tests.roster.test_membership_access_crafted import _membership
from tests.roster.test_nrps_crafted import FakeLms, page
from tests.security_support import frame_of
from tests.tool.lms_pages import assert_home
from tests.tool.test_moodle_shaped import (
    COURSE,
    LAUNCH_TOKEN,
    NRPS,
    STUDENT,
    FakeMoodle,
    MoodleLaunch,
    MoodleUser,
    moodle_launch,
    register_moodle,
)


def test_a_student_enrolled_and_launching_during_a_sync_is_not_marked_gone(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    course = make_roster_course(3)
    late = STUDENTS[3].user_id
    fetched, go_on = threading.Event(), threading.Event()
    real_pages = nrps.pages

    def slow_pages(platform: Any, url: str) -> Iterator[Any]:
        yield from real_pages(platform, url)  # the LMS has answered; the sync still stores
        fetched.set()
        go_on.wait(20)

    nrps.pages = slow_pages  # type: ignore[method-assign]
    result: dict[str, Any] = {}
    sync = threading.Thread(
        target=lambda: result.update(r=sync_roster(db, nrps, context_id=course.context_id))
    )
    sync.start()
    assert fetched.wait(20)
    # Meanwhile the school enrols a late student, who opens Pathways at once.
    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:4]),
        ),
    )
    student = frame_of(tool_server, lti.launch(late, context_id=course.lms_context_id))
    assert student.get("/home").status_code == 200
    go_on.set()
    sync.join(30)
    assert result["r"].ok
    assert _membership(db, course, late) is MembershipStatus.ACTIVE
    answer = student.get("/home")
    assert answer.status_code == 200, answer.text[:300]
    # Students the LMS no longer listed when it answered are still marked gone.
    dropped = make_roster_course(3)
    assert sync_roster(db, nrps, context_id=dropped.context_id).ok
    set_enrollments(
        dropped,
        (
            Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:2]),
        ),
    )
    assert sync_roster(db, nrps, context_id=dropped.context_id).ok
    assert _membership(db, dropped, STUDENTS[2].user_id) is MembershipStatus.INACTIVE


# --- Moodle: non-editing teachers are Instructor in launches and Learner in the roster ----

TA = MoodleUser("7", "ta1", "Tina", "Assistant", "ta1@moodle.example")


@pytest.fixture
def moodle_site(tool_server: ToolServer, database_url: str) -> Iterator[tuple[FakeMoodle, FakeLms]]:
    moodle = FakeMoodle(tool_server.url)
    services_lms = FakeLms()  # Moodle's token.php and services.php
    register_moodle(database_url, moodle, token_url=services_lms.token_url)
    yield moodle, services_lms
    services_lms.stop()
    moodle.stop()


def moodle_member(user: MoodleUser, role: str) -> dict[str, object]:
    return {
        "status": "Active",
        "roles": [role],
        "user_id": user.id,
        "name": user.fullname,
        "given_name": user.firstname,
        "family_name": user.lastname,
    }


def wait_for_sync(db: Database, issuer: str) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with db.session_factory() as s:
            context_id = s.scalar(
                select(Context.id)
                .join(Platform, Platform.id == Context.platform_id)
                .where(Platform.issuer == issuer, Context.context_id == COURSE.id)
            )
            row = services.get_roster_sync(s, context_id=context_id) if context_id else None
            if context_id and row is not None and row.finished_at is not None:
                return context_id
        time.sleep(0.1)
    raise AssertionError("the launch's roster sync did not finish")


def test_a_moodle_non_editing_teacher_stays_a_teacher_after_the_roster_sync(
    moodle_site: tuple[FakeMoodle, FakeLms], db: Database
) -> None:
    moodle, services_lms = moodle_site
    nrps_url = services_lms.url(
        f"/mod/lti/services.php/CourseSection/{COURSE.id}/bindings/1/memberships"
    )
    # Moodle's answer to ?role=…#Learner: students and non-editing teachers, both "Learner".
    services_lms.route = lambda seen: page(
        [moodle_member(STUDENT, "Learner"), moodle_member(TA, "Learner")]
    )
    claims = {NRPS: {"context_memberships_url": nrps_url, "service_versions": ["2.0"]}}
    with httpx.Client(timeout=30) as browser:
        launched = moodle_launch(moodle, browser, MoodleLaunch(TA, ["Instructor"], claims=claims))
        assert_home(launched, "Teacher", "Tina Assistant")
        token = LAUNCH_TOKEN.search(launched.text)
        assert token is not None
        context_id = wait_for_sync(db, moodle.wwwroot)
        assert services_lms.requests("/mod/lti/services.php/"), "no roster sync happened"
        next_page = browser.get(moodle.tool_url + "/grades/", params={"lt": token.group(1)})
    assert next_page.status_code == 200, next_page.text[:300]
    with db.session_factory() as s:
        students = {p.name for p in services.list_students(s, context_id=context_id)}
        ta = s.execute(
            select(Membership.is_teacher, Membership.is_learner, Membership.status)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.context_id == context_id, Person.sub == TA.id)
        ).one()
    assert students == {STUDENT.fullname}
    assert tuple(ta) == (True, False, MembershipStatus.ACTIVE)


def test_only_moodle_shaped_rosters_leave_launched_teachers_alone() -> None:
    understates = syncing.roster_understates_teaching
    assert understates(
        "https://moodle.school.edu/mod/lti/services.php/CourseSection/4/bindings/2/memberships"
    )
    assert not understates("https://school.instructure.com/api/lti/courses/4/names_and_roles")
    assert not understates("https://lms.example/bindings/2/memberships/extra")
