"""Adversarial checks of the teacher's Students page and its "Refresh roster" button, as a
teacher meets them at 8 a.m.: double clicks, LMS names with markup, students the LMS dropped,
an LMS without a roster service, a sync that died, and an LMS that answers slowly."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from lti_app.db import Database, utcnow
from lti_app.demo import app as demo_app
from lti_app.demo import seed
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Person, Role
from lti_app.roster.models import RosterSync, SyncStatus
from lti_app.tool.models import Membership, MembershipStatus
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, frame

REFRESH_WAIT_KEY = "lti_app.roster.refresh_wait"


@dataclass
class RosterPage:
    lms_context_id: str
    context_id: int
    teacher: Frame

    def set_students(self, people: list[str]) -> None:
        """What the LMS's course holds from now on (the teacher stays)."""
        course = seed.COURSES[self.lms_context_id]
        seed.COURSES[self.lms_context_id] = Course(
            course.context_id,
            course.label,
            course.title,
            (
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                *(Enrollment(p, Role.LEARNER) for p in people),
            ),
        )


def _sync_row(db: Database, context_id: int) -> RosterSync | None:
    with db.session_factory() as session:
        return session.scalar(select(RosterSync).where(RosterSync.context_id == context_id))


def _wait_until_synced(
    db: Database, context_id: int, *, status: SyncStatus, members: int | None = None
) -> None:
    deadline = time.monotonic() + 20
    while True:
        row = _sync_row(db, context_id)
        if (
            row is not None
            and row.status is status
            and (members is None or row.member_count == members)
        ):
            return
        assert time.monotonic() < deadline, f"no roster sync reached {status}"
        time.sleep(0.05)


@pytest.fixture
def roster_page(
    lti: LtiActions, db: Database, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., RosterPage]:
    """A new course on the test LMS, opened by its teacher; the launch's background roster
    sync has finished (or failed, without a roster service)."""

    def make(students: list[str], *, include_nrps: bool = True) -> RosterPage:
        lms_context_id = f"course-rui-{uuid.uuid4().hex[:8]}"
        course = Course(
            lms_context_id,
            "RUI",
            "Roster UI",
            (
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                *(Enrollment(s, Role.LEARNER) for s in students),
            ),
        )
        monkeypatch.setitem(seed.COURSES, lms_context_id, course)
        launched = lti.launch(TEACHER.user_id, context_id=lms_context_id, include_nrps=include_nrps)
        teacher = frame(launched, lti.tool.url)
        with db.session_factory() as session:
            context_id = lti.course_id(session, lms_context_id)
        _wait_until_synced(
            db, context_id, status=SyncStatus.OK if include_nrps else SyncStatus.FAILED
        )
        return RosterPage(lms_context_id, context_id, teacher)

    return make


def _rows(page: httpx.Response) -> int:
    return page.text.count('<th scope="row">')


def test_double_click_on_refresh_lists_each_student_once(
    roster_page: Callable[..., RosterPage], lti: LtiActions, db: Database
) -> None:
    """Thirty students; the LMS answers each request in a quarter second; the teacher clicks
    "Refresh roster" three times. Every click gets an ordinary page that says what happened,
    and the class is listed once."""
    subs = [s.user_id for s in STUDENTS]
    course = roster_page(subs)
    lti.platform.delay_ms = 250
    barrier = threading.Barrier(3)
    answers: list[httpx.Response] = []

    def click() -> None:
        barrier.wait()
        answers.append(course.teacher.follow(course.teacher.post("/roster/refresh")))

    threads = [threading.Thread(target=click) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lti.platform.delay_ms = 0
    assert [a.status_code for a in answers] == [200] * 3, [a.text[:400] for a in answers]
    for answer in answers:
        text = answer.text
        assert (
            "Roster updated from the LMS: 30 students." in text
            or "already running" in text
            or "keeps updating the roster" in text
        ), text[:3000]
    _wait_until_synced(db, course.context_id, status=SyncStatus.OK)
    page = course.teacher.get("/roster/")
    assert _rows(page) == 30
    assert page.text.count("José Núñez") == 1
    with db.session_factory() as session:
        learners = session.scalar(
            select(func.count()).where(
                Membership.context_id == course.context_id,
                Membership.is_learner.is_(True),
                Membership.status == MembershipStatus.ACTIVE,
            )
        )
    assert learners == 30


def test_lms_names_with_markup_are_shown_as_text(
    roster_page: Callable[..., RosterPage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names and emails come from the LMS as typed by anyone: the Students page shows them,
    and runs none of them. Odd query parameters change nothing."""
    hostile = Person(
        "user-x01",
        "<img src=x onerror=alert(1)>",
        "</th><script>alert(2)</script>",
        'evil"><svg onload=alert(3)>@x.test',
    )
    monkeypatch.setitem(seed.PEOPLE, hostile.user_id, hostile)
    course = roster_page([hostile.user_id, STUDENTS[9].user_id])
    refreshed = course.teacher.follow(course.teacher.post("/roster/refresh"))
    for page in (refreshed, course.teacher.get("/roster/")):
        assert page.status_code == 200
        text = page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text
        assert "&lt;/th&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in text
        assert "Bobby &lt;b&gt;Tables&lt;/b&gt;" in text
        for bad in ("<img src=x", "<script>alert(2)", "<svg onload", "<b>Tables"):
            assert bad not in text, bad
        assert _rows(page) == 2
    for params in (
        {"include_inactive": "0"},
        {"sort": "\x00"},
        {"page": "99999999999999999999"},
        {"context_id": "1"},
    ):
        odd = course.teacher.get("/roster/", **params)
        assert odd.status_code == 200, params
        assert _rows(odd) == 2, params


def test_a_dropped_student_stays_visible_but_is_not_counted_as_in_the_class(
    roster_page: Callable[..., RosterPage],
) -> None:
    """The LMS drops one of five students. Decision: the page keeps them (their work stays)
    marked Inactive, but the count the teacher compares with the LMS's class list is the
    four who are in the class now, and it says how many left."""
    subs = [s.user_id for s in STUDENTS[:5]]
    course = roster_page(subs)
    course.set_students(subs[:2] + subs[3:])
    page = course.teacher.follow(course.teacher.post("/roster/refresh"))
    assert page.status_code == 200
    assert "Roster updated from the LMS: 4 students." in page.text
    assert "1 no longer listed, now shown as inactive." in page.text
    assert _rows(page) == 5
    assert "小龍" in page.text or "李小龍" in page.text
    assert page.text.count(">Inactive<") == 1
    assert "4 students" in page.text
    assert "5 students" not in page.text
    assert "1 no longer" in page.text.split("<caption", 1)[1].split("</caption>", 1)[0]


def test_a_course_the_lms_concluded_keeps_its_class_and_the_page_says_why(
    roster_page: Callable[..., RosterPage],
) -> None:
    """A concluded Canvas course's roster lists nobody. Decision: the class stays as it was
    (nobody is marked inactive) and the page says why, after Refresh and on a later visit."""
    subs = [s.user_id for s in STUDENTS[:3]]
    course = roster_page(subs)
    course.set_students([])
    page = course.teacher.follow(course.teacher.post("/roster/refresh"))
    assert page.status_code == 200
    assert "listed no students in this course" in page.text
    assert "last one Pathways received" in page.text
    assert ">Inactive<" not in page.text
    assert "3 students" in page.text
    later = course.teacher.get("/roster/")
    assert "listed no students in this course" in later.text
    assert "3 students" in later.text


def test_without_a_roster_service_the_page_says_what_to_ask_for(
    roster_page: Callable[..., RosterPage],
) -> None:
    """The LMS admin has not enabled Names and Roles: the page and the Refresh button say so
    in words an admin can act on, and the students who opened Pathways are still listed."""
    course = roster_page([STUDENTS[0].user_id], include_nrps=False)
    page = course.teacher.get("/roster/")
    assert page.status_code == 200
    assert "has not offered Pathways this course" in page.text
    refreshed = course.teacher.follow(course.teacher.post("/roster/refresh"))
    assert refreshed.status_code == 200
    assert "has not offered Pathways this course" in refreshed.text
    assert "Names and Role" in refreshed.text
    # It never sent one: the list is not "the last one Pathways received".
    assert "last one Pathways received" not in refreshed.text
    assert "the students who have opened Pathways" in refreshed.text


def test_a_sync_that_died_is_not_shown_as_running(
    roster_page: Callable[..., RosterPage], db: Database
) -> None:
    """A server restart killed a roster sync mid-way, before any sync ever succeeded. Once its
    lease has run out the page must not keep saying "Updating from the LMS now", and Refresh
    works at once."""
    course = roster_page([STUDENTS[0].user_id], include_nrps=False)
    with db.begin() as session:
        row = session.scalar(select(RosterSync).where(RosterSync.context_id == course.context_id))
        assert row is not None
        row.status = SyncStatus.RUNNING
        row.last_error = ""
        row.succeeded_at = None
        row.started_at = utcnow() - timedelta(hours=1)
        row.lease_until = utcnow() - timedelta(minutes=30)
    page = course.teacher.get("/roster/")
    assert page.status_code == 200
    assert "Updating from the LMS now" not in page.text
    refreshed = course.teacher.follow(course.teacher.post("/roster/refresh"))
    assert "already running" not in refreshed.text
    # Still running for real (lease in the future): then it says so.
    with db.begin() as session:
        row = session.scalar(select(RosterSync).where(RosterSync.context_id == course.context_id))
        assert row is not None
        row.status = SyncStatus.RUNNING
        row.succeeded_at = None
        row.lease_until = utcnow() + timedelta(minutes=10)
    page = course.teacher.get("/roster/")
    assert "Updating from the LMS now" in page.text


class _HeldLms:
    """Stands in for the test LMS's `time` module: the pause before each of its answers
    (`delay_ms`) lasts until `release` is set, not a set time. `held` tells that a request
    reached the LMS and is being held."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()

    def sleep(self, seconds: float) -> None:
        self.held.set()
        self.release.wait(60)  # only keeps a failing test from holding the LMS forever

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_a_slow_lms_does_not_hold_the_teachers_page(
    roster_page: Callable[..., RosterPage],
    lti: LtiActions,
    db: Database,
    tool_server: ToolServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The LMS is slow (slow Canvas at 8 a.m.): here it answers nothing of the roster until
    the teacher has Pathways' answer. Decision: "Refresh roster" answers within its waiting
    time (a few seconds in production; one here) saying the update goes on; the new list
    appears once it is done, and nothing is lost. A Refresh that waited for the LMS would
    never answer."""
    subs = [s.user_id for s in STUDENTS[:25]]
    course = roster_page(subs[:3])
    course.set_students(subs)
    monkeypatch.setitem(tool_server.app.extensions, REFRESH_WAIT_KEY, 1.0)
    held = _HeldLms()
    monkeypatch.setattr(demo_app, "time", held)
    lti.platform.delay_ms = 1  # every LMS answer now waits for held.release
    try:
        answer = course.teacher.follow(course.teacher.post("/roster/refresh"))
    except httpx.ReadTimeout:
        pytest.fail("the teacher's browser gave up first: Refresh waited for the held LMS")
    finally:
        reached_lms = held.held.is_set()
        held.release.set()
    assert answer.status_code == 200
    assert reached_lms, "the sync had not asked the LMS anything when Refresh answered"
    assert "keeps updating the roster" in answer.text
    assert "could not be updated" not in answer.text
    _wait_until_synced(db, course.context_id, status=SyncStatus.OK, members=25)
    lti.platform.delay_ms = 0
    page = course.teacher.get("/roster/")
    assert _rows(page) == 25
    assert "(25 students)" in page.text


def test_after_the_lms_asked_to_wait_the_page_says_until_when(
    roster_page: Callable[..., RosterPage], db: Database
) -> None:
    """The LMS refused the last sync with Retry-After: the page names the time (in the
    course's zone, rounded up to the minute) from which Pathways asks it again."""
    course = roster_page([STUDENTS[0].user_id])
    until = utcnow().replace(second=30, microsecond=0) + timedelta(minutes=10)
    with db.begin() as session:
        row = session.scalar(select(RosterSync).where(RosterSync.context_id == course.context_id))
        assert row is not None
        row.status = SyncStatus.FAILED
        row.last_error = "The LMS roster service is busy or unavailable (429)."
        row.lease_until = until
    page = course.teacher.get("/roster/").text
    shown = (until + timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M UTC")
    assert (
        f"The LMS asked Pathways not to ask it again before {shown}. Until then, opening "
        "Pathways does not update the roster; “Refresh roster” still asks at once."
    ) in page
    with db.begin() as session:  # the time has passed: nothing to say
        row = session.scalar(select(RosterSync).where(RosterSync.context_id == course.context_id))
        assert row is not None
        row.lease_until = utcnow() - timedelta(seconds=1)
    assert "not to ask it again" not in course.teacher.get("/roster/").text
