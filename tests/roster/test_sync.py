"""Roster sync against the test LMS: paging, statuses, failures that keep the old roster."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.seed import STUDENTS, TEACHER, Enrollment, Role
from lti_app.demo.server import RunningPlatform
from lti_app.demo.state import Fault
from lti_app.roster import services, sync_lease
from lti_app.roster.client import NrpsClient
from lti_app.roster.jobs import sync_roster
from lti_app.roster.models import RosterSync, SyncStatus
from lti_app.tool.client import SCOPE_LINEITEM
from lti_app.tool.models import Membership, MembershipStatus, Person, Platform
from tests.conftest import Launched, LtiActions, ToolServer, registration_disabled
from tests.courses.frames import second_lms

from .conftest import CSRF, LAUNCH_TOKEN, RosterCourse, set_enrollments


def _students(db: Database, context_id: int) -> dict[str, services.Student]:
    with db.session_factory() as session:
        students = services.list_students(session, context_id=context_id, include_inactive=True)
        subs = {
            p.id: p.sub
            for p in session.scalars(
                select(Person).where(Person.id.in_([s.person_id for s in students]))
            )
        }
    return {subs[s.person_id]: s for s in students}


def test_sync_follows_every_page_and_stores_members_as_received(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lms: RunningPlatform,
) -> None:
    course = make_roster_course(students=25)  # 3 pages of 10 on the test LMS
    before = lms.platform.counters.requests["nrps"]
    result = sync_roster(db, nrps, context_id=course.context_id)
    assert result.ok, result.message
    assert result.members == 25  # students: the teacher is not counted
    assert lms.platform.counters.requests["nrps"] - before == 3
    students = _students(db, course.context_id)
    assert len(students) == 25
    assert students["user-s10"].name == "Bobby <b>Tables</b>"  # stored as received
    assert students["user-s01"].email == "s01@students.demo-lms.test"
    assert not students["user-s01"].has_launched
    assert all(s.status is MembershipStatus.ACTIVE for s in students.values())


def test_a_disabled_registrations_roster_is_not_fetched(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lms: RunningPlatform,
) -> None:
    course = make_roster_course(students=3)
    before = lms.platform.counters.requests["nrps"]
    with registration_disabled(db, course.platform_id):
        result = sync_roster(db, nrps, context_id=course.context_id)
    assert not result.ok
    assert "disabled" in result.message
    assert "lti-app platform enable" in result.message
    assert lms.platform.counters.requests["nrps"] == before
    assert _students(db, course.context_id) == {}
    again = sync_roster(db, nrps, context_id=course.context_id)
    assert again.ok, again.message
    assert again.members == 3


def test_a_member_who_disappears_becomes_inactive_with_data_kept(
    make_roster_course: Callable[..., RosterCourse], nrps: NrpsClient, db: Database
) -> None:
    course = make_roster_course(students=4)
    assert sync_roster(db, nrps, context_id=course.context_id).ok
    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:3]),
        ),
    )
    result = sync_roster(db, nrps, context_id=course.context_id)
    assert result.deactivated == 1
    students = _students(db, course.context_id)
    assert students["user-s04"].status is MembershipStatus.INACTIVE
    assert students["user-s04"].name == "Ольга Петрова"
    with db.session_factory() as session:
        active = services.list_students(session, context_id=course.context_id)
    assert len(active) == 3


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ("refuse", "refused Pathways a service token"),
        ("scopes", "course roster (Names and Role Provisioning)"),
        ("401", "Authorization header"),
        ("503", "Pathways will try again later"),
    ],
)
def test_a_failed_sync_says_what_to_check_and_keeps_the_roster(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lms: RunningPlatform,
    hook: str,
    expected: str,
) -> None:
    course = make_roster_course(students=5)
    assert sync_roster(db, nrps, context_id=course.context_id).ok
    set_enrollments(course, (Enrollment(TEACHER.user_id, Role.INSTRUCTOR),))
    platform = lms.platform
    platform.revoke_tokens()
    if hook == "refuse":
        nrps._tokens.drop(platform_row(db, course.platform_id), frozenset({_nrps_scope()}))
        platform.token_refusal = (401, "unauthorized_client")
    elif hook == "scopes":
        nrps._tokens.drop(platform_row(db, course.platform_id), frozenset({_nrps_scope()}))
        platform.granted_scopes = frozenset({SCOPE_LINEITEM})
    elif hook == "401":
        platform.set_outage("nrps", Fault(401))
    else:
        platform.set_outage("nrps", Fault(503))
    result = sync_roster(db, nrps, context_id=course.context_id)
    assert not result.ok
    assert expected in result.message
    students = _students(db, course.context_id)
    assert len(students) == 5
    assert all(s.status is MembershipStatus.ACTIVE for s in students.values())
    with db.session_factory() as session:
        row = services.get_roster_sync(session, context_id=course.context_id)
        assert row is not None
        assert row.status is SyncStatus.FAILED
        assert expected in row.last_error


def _nrps_scope() -> str:
    from lti_app.tool.client import SCOPE_NRPS

    return SCOPE_NRPS


def platform_row(db: Database, platform_id: int) -> Platform:
    with db.session_factory() as session:
        row = session.get(Platform, platform_id)
        assert row is not None
        return row


@pytest.fixture
def own_lms_lti(tool_server: ToolServer, database_url: str) -> Iterator[LtiActions]:
    """The demo course on an LMS of its own: on the shared one, a sync another test's launch
    started (and its outcome) decides whether this launch starts one."""
    with second_lms(tool_server, database_url) as running:
        lti = LtiActions(running, tool_server)
        try:
            yield lti
        finally:
            lti.close()


def test_teacher_launch_syncs_in_the_background_and_the_page_lists_students(
    own_lms_lti: LtiActions, db: Database
) -> None:
    lti = own_lms_lti
    launched = lti.launch("user-t01")
    assert launched.response.status_code == 200
    with db.session_factory() as session:
        context_id = lti.course_id(session)

    def synced() -> bool:
        with db.session_factory() as session:
            row = session.scalar(select(RosterSync).where(RosterSync.context_id == context_id))
            return row is not None and row.status is SyncStatus.OK

    deadline = time.monotonic() + 20
    while not synced():
        assert time.monotonic() < deadline, "no background roster sync after a teacher launch"
        time.sleep(0.05)
    token = LAUNCH_TOKEN.search(launched.text)
    assert token is not None
    client = launched.client
    page = client.get(f"{lti.tool.url}/roster/", params={"lt": token.group(1)})
    assert page.status_code == 200
    assert "José Núñez" in page.text
    assert "Bobby &lt;b&gt;Tables&lt;/b&gt;" in page.text
    assert "Not yet" in page.text  # students who never launched are listed
    with db.session_factory() as session:
        learners = session.scalars(
            select(Membership).where(
                Membership.context_id == context_id, Membership.is_learner.is_(True)
            )
        ).all()
    assert len(learners) >= 30

    refreshed = client.post(
        f"{lti.tool.url}/roster/refresh",
        data={"csrf_token": CSRF.search(page.text).group(1), "lt": token.group(1)},  # type: ignore[union-attr]
    )
    assert refreshed.status_code == 303  # to the page: Back in the LMS frame re-sends nothing
    refreshed = client.get(f"{lti.tool.url}{refreshed.headers['location']}")
    assert refreshed.status_code == 200
    assert "Roster updated from the LMS: 30 students." in refreshed.text

    lti.platform.set_outage("nrps", Fault(401))
    failed = client.post(
        f"{lti.tool.url}/roster/refresh",
        data={"csrf_token": CSRF.search(page.text).group(1), "lt": token.group(1)},  # type: ignore[union-attr]
    )
    failed = client.get(f"{lti.tool.url}{failed.headers['location']}")
    assert "The roster could not be updated" in failed.text
    assert "Authorization header" in failed.text
    assert "José Núñez" in failed.text


def test_a_class_launching_while_the_roster_syncs_loses_nothing(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
) -> None:
    """8 a.m.: the teacher's launch syncs the roster while thirty students open the course
    for the first time; both insert the same memberships at the same moment."""
    from concurrent.futures import ThreadPoolExecutor

    course = make_roster_course(students=30)
    learners = [e.user_id for e in course.course.enrollments if e.role is Role.LEARNER]
    with ThreadPoolExecutor(max_workers=9) as pool:
        sync = pool.submit(sync_roster, db, nrps, context_id=course.context_id)
        launches = list(
            pool.map(
                lambda user: lti.launch(user, context_id=course.lms_context_id).response,
                learners,
            )
        )
    result = sync.result()
    assert result.ok, result.message
    assert [r.status_code for r in launches] == [200] * len(learners)
    assert all("My pathways" in r.text for r in launches)
    students = _students(db, course.context_id)
    assert sorted(students) == sorted(learners)
    assert all(s.status is MembershipStatus.ACTIVE for s in students.values())
    assert all(s.has_launched for s in students.values())


def test_a_student_the_roster_drops_loses_the_open_session_until_the_lms_launches_them_again(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lti: LtiActions,
) -> None:
    course = make_roster_course(students=3)
    student = lti.launch("user-s03", context_id=course.lms_context_id)
    teacher = lti.launch("user-t01", context_id=course.lms_context_id)
    tokens = {}
    for who, launched in (("student", student), ("teacher", teacher)):
        found = LAUNCH_TOKEN.search(launched.text)
        assert found is not None, who
        tokens[who] = found.group(1)

    def home(who: str, launched: Launched) -> httpx.Response:
        return launched.client.get(f"{lti.tool.url}/home", params={"lt": tokens[who]})

    assert home("student", student).status_code == 200
    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:2]),
        ),
    )
    deadline = time.monotonic() + 20
    while (synced := sync_roster(db, nrps, context_id=course.context_id)).skipped:
        # The teacher's launch started a sync in the background: this one waits its turn.
        assert time.monotonic() < deadline, "the background roster sync never finished"
        time.sleep(0.05)
    assert synced.ok, synced.message
    assert _students(db, course.context_id)["user-s03"].status is MembershipStatus.INACTIVE
    ended = home("student", student)
    assert ended.status_code == 403
    assert "no longer a member of this course in the LMS" in ended.text
    assert "Open Pathways again from the LMS" in ended.text
    # The roster still lists her as the course's teacher: her session stays.
    assert home("teacher", teacher).status_code == 200

    # Enrolled again: the LMS's next launch is the proof, and opens Pathways.
    set_enrollments(
        course,
        (
            Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
            *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:3]),
        ),
    )
    again = lti.launch("user-s03", context_id=course.lms_context_id)
    assert again.response.status_code == 200
    assert "My pathways" in again.text
    found = LAUNCH_TOKEN.search(again.text)
    assert found is not None
    tokens["student"] = found.group(1)
    assert home("student", again).status_code == 200


def test_two_teachers_opening_a_new_course_at_once_share_one_roster_record(
    db: Database, lti: LtiActions
) -> None:
    """Both launches start a roster sync; neither fails on the other's new record (on
    PostgreSQL the second insert used to be refused, and that sync was lost)."""
    import threading
    import uuid

    from lti_app.tool.models import Context

    lti.launch(TEACHER.user_id)  # the platform is registered
    with db.begin() as session:
        platform_id = session.scalars(select(Platform.id)).first()
        assert platform_id is not None
        context = Context(platform_id=platform_id, context_id=f"new-{uuid.uuid4().hex}")
        session.add(context)
        session.flush()
        context_id = context.id
    first_made_its_record = threading.Event()
    errors: list[BaseException] = []

    def remember(first: bool) -> None:
        try:
            with db.begin() as session:
                if not first:
                    first_made_its_record.wait(10)
                sync_lease.remember_nrps_url(
                    session, context_id=context_id, nrps_url="https://lms.example/nrps"
                )
                if first:
                    first_made_its_record.set()
                    time.sleep(0.5)  # the other launch tries while this one is still open
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=remember, args=(first,)) for first in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with db.begin() as session:
        rows = session.scalars(select(RosterSync).where(RosterSync.context_id == context_id)).all()
        assert [row.nrps_url for row in rows] == ["https://lms.example/nrps"]
