"""Adversarial checks of the teacher's gradebook pages (Gradebook, Gradebook sync, Retry) as a
teacher meets them at 8 a.m.: double clicks, odd form values, another course's ids, LMS text
with markup, and an LMS that offers no gradebook service."""

from __future__ import annotations

import functools
import html
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import Fault
from lti_app.grades.models import Gradebook, LineItem, OutboxStatus
from lti_app.roster.models import RosterSync, SyncStatus
from tests.conftest import LtiActions
from tests.courses.frames import Frame, frame

from .conftest import GradeCourse, outbox_rows

HUGE = "99999999999999999999999"
HOSTILE_BODY = "<script>alert('lms')</script><b>nope</b>"


def _teacher(lti: LtiActions, lms_context_id: str, *, include_ags: bool = True) -> Frame:
    launched = lti.launch(TEACHER.user_id, context_id=lms_context_id, include_ags=include_ags)
    return frame(launched, lti.tool.url)


def _wait_for_roster(db: Database, context_id: int) -> None:
    """The teacher's launch syncs the roster in the background (names come from the LMS)."""
    deadline = time.monotonic() + 20
    while True:
        with db.session_factory() as session:
            row = session.scalar(select(RosterSync).where(RosterSync.context_id == context_id))
            if row is not None and row.status is SyncStatus.OK:
                return
        assert time.monotonic() < deadline, "the launch's roster sync did not finish"
        time.sleep(0.05)


def _saved(teacher: Frame, path: str, data: dict[str, Any]) -> httpx.Response:
    """The page a form's redirect leads to (303: Back and reload in the frame send nothing)."""
    return teacher.follow(teacher.post(path, data))


def _at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls in threads released together, as a double (or triple) click does."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


@dataclass
class FreshCourse:
    lms_context_id: str
    teacher: Frame


@pytest.fixture
def fresh_course(lti: LtiActions, monkeypatch: pytest.MonkeyPatch) -> Callable[..., FreshCourse]:
    """A course Pathways has never seen: no gradebook settings yet, until the teacher opens it."""

    def make(students: int = 3, *, include_ags: bool = True) -> FreshCourse:
        lms_context_id = f"course-gui-{uuid.uuid4().hex[:8]}"
        course = Course(
            lms_context_id,
            "GUI",
            "Gradebook UI",
            (
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:students]),
            ),
        )
        monkeypatch.setitem(seed.COURSES, lms_context_id, course)
        return FreshCourse(lms_context_id, _teacher(lti, lms_context_id, include_ags=include_ags))

    return make


def _failed_scores(course: GradeCourse, body: str = HOSTILE_BODY) -> list[int]:
    """Every student's score refused by the LMS with a permanent error (a 418 with markup)."""
    worker = course.worker()
    worker.sync_line_items()
    course.lms.platform.set_outage("ags", Fault(418, body=body))
    ids = course.record(3)
    course.drain_until_settled(worker)
    course.lms.platform.set_outage("ags", None)
    assert course.counts()[OutboxStatus.FAILED] == len(ids)
    return ids


def test_double_click_on_retry_sends_each_result_once(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    """The teacher fixes nothing, sees ten failures, and double-clicks "Retry": each student's
    level reaches the LMS once, and the page then says there is no problem left."""
    course = make_course(students=10, competencies=1)
    _failed_scores(course)
    teacher = _teacher(lti, course.lms_context_id)
    _wait_for_roster(course.db, course.context_id)
    page = teacher.get("/grades/sync")
    assert page.status_code == 200
    # LMS-supplied names and error bodies are shown as text, never as markup.
    assert "Bobby &lt;b&gt;Tables&lt;/b&gt;" in page.text
    assert "<b>Tables</b>" not in page.text
    assert html.escape(HOSTILE_BODY, quote=True) in page.text or (
        "&lt;script&gt;alert(" in page.text
    )
    assert "<script>alert('lms')" not in page.text
    answers = _at_once([lambda: teacher.follow(teacher.post("/grades/retry"))] * 2)
    assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
    assert all("will be sent again" in a.text for a in answers)
    course.drain_until_settled(course.worker())
    (item,) = course.lms.platform.state.line_items_in(course.lms_context_id)
    with course.lms.platform.state.lock:
        accepted = Counter(
            r.user_id
            for r in course.lms.platform.state.scores
            if r.line_item_id == item.id and r.status == 200
        )
    assert accepted == dict.fromkeys(course.students, 1)
    after = teacher.get("/grades/sync")
    assert "No problems." in after.text


def test_odd_retry_ids_are_answered_not_crashed_and_retry_nothing(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    """Ids a browser never sends (superscript digits, too large for the database, negative,
    decimals, text, NUL) get a page, not a 500. Decision: a Retry that names results retries
    only those; one that names none Pathways knows retries nothing, not everything."""
    course = make_course(students=2, competencies=1)
    ids = _failed_scores(course)
    teacher = _teacher(lti, course.lms_context_id)
    for odd in (["²"], [HUGE], ["-1"], ["1.5"], ["abc"], ["\x00"], ["١٢"], ["²", HUGE, "x"]):
        answer = teacher.follow(teacher.post("/grades/retry", {"id": odd}))
        assert answer.status_code == 200, (odd, answer.status_code, answer.text[:300])
        assert "0 result(s) will be sent again" in answer.text, odd
        assert [r.status for r in outbox_rows(course.db, course.context_id)] == [
            OutboxStatus.FAILED
        ] * len(ids), odd
    # Odd query parameters on the pages themselves change nothing.
    for params in ({"id": "²"}, {"display": "\x00"}, {"competency": HUGE}, {"page": "-1"}):
        assert teacher.get("/grades/sync", **params).status_code == 200, params
        assert teacher.get("/grades/", **params).status_code == 200, params
    # A real selection still works.
    answer = teacher.follow(teacher.post("/grades/retry", {"id": [str(ids[0])]}))
    assert "1 result(s) will be sent again" in answer.text


def test_another_courses_results_cannot_be_retried_or_seen(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    """A teacher who types another course's result id into the Retry form changes nothing
    there, and that course's students never appear on this course's page."""
    mine = make_course(students=1, competencies=1)
    theirs = make_course(students=3, competencies=1)
    their_ids = _failed_scores(theirs)
    teacher = _teacher(lti, mine.lms_context_id)
    answer = teacher.follow(teacher.post("/grades/retry", {"id": [str(i) for i in their_ids]}))
    assert answer.status_code == 200
    assert "0 result(s) will be sent again" in answer.text
    assert [r.status for r in outbox_rows(theirs.db, theirs.context_id)] == [
        OutboxStatus.FAILED
    ] * len(their_ids)
    page = teacher.get("/grades/sync")
    assert "Siobhán" not in page.text  # a student of the other course only
    assert all(f"#{i}<" not in page.text for i in their_ids)


def test_double_click_on_save_columns_makes_one_column(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    """Ticking a new competency and double-clicking "Save columns" gives one gradebook column
    and two ordinary pages (PostgreSQL refused the second insert with a 500)."""
    course = make_course(students=2, competencies=1)
    teacher = _teacher(lti, course.lms_context_id)
    for round_ in range(3):
        with db.begin() as session:
            new = create_competency(
                session, context_id=course.context_id, code=f"N{round_}", title="New one"
            ).id
        wanted = [str(c) for c in (*course.competency_ids, new)]
        save = functools.partial(_saved, teacher, "/grades/columns", {"competency": wanted})
        answers = _at_once([save] * 3)
        assert [a.status_code for a in answers] == [200] * 3, [a.text[:500] for a in answers]
        assert all("Gradebook columns saved." in a.text for a in answers)
        with db.session_factory() as session:
            count = session.scalar(
                select(func.count()).where(
                    LineItem.context_id == course.context_id, LineItem.competency_id == new
                )
            )
        assert count == 1, round_


def test_first_visits_at_once_make_one_gradebook(
    fresh_course: Callable[..., FreshCourse], lti: LtiActions, db: Database
) -> None:
    """The teacher opens "Gradebook" and "Gradebook sync" in two tabs (or double-clicks the
    link) the first time: both pages open and the course has one gradebook."""
    course = fresh_course()
    t = course.teacher
    answers = _at_once(
        [
            lambda: t.get("/grades/"),
            lambda: t.get("/grades/sync"),
            lambda: t.get("/grades/"),
            lambda: t.get("/grades/sync"),
        ]
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text[:500] for a in answers]
    with db.session_factory() as session:
        context_id = lti.course_id(session, course.lms_context_id)
        assert session.scalar(select(func.count()).where(Gradebook.context_id == context_id)) == 1


def test_odd_percentages_are_refused_in_words(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    """What a teacher might type in the percentage table (or a tampered form) is refused with
    a sentence, and nothing is saved; sensible spellings are accepted."""
    course = make_course(students=1, competencies=1)
    teacher = _teacher(lti, course.lms_context_id)
    for raw in ("NaN", "sNaN", "Infinity", "1e999999999", "-5", "\x00", "8 5", "1" * 5000):
        answer = teacher.post("/grades/display", {"display": "percent", "level-2": raw})
        assert answer.status_code in (200, 400), (raw[:20], answer.status_code)
        assert 'role="alert"' in answer.text, raw[:20]
        assert len(answer.text) < 200_000  # a huge value is not echoed back whole
        assert 'id="display-points" name="display" value="points" checked' in answer.text
    for display in ("PERCENT", "\x00", ""):
        answer = teacher.post("/grades/display", {"display": display})
        assert answer.status_code in (200, 400), display
    saved = teacher.follow(
        teacher.post("/grades/display", {"display": "percent", "level-2": " 85 % "})
    )
    assert saved.status_code == 200
    assert 'value="85.00"' in saved.text


def test_sync_page_says_when_the_lms_offers_no_gradebook(
    fresh_course: Callable[..., FreshCourse], lti: LtiActions, db: Database
) -> None:
    """An LMS whose admin has not enabled grade services: the teacher who chooses columns and
    then looks at "Gradebook sync" to see why nothing arrives is told why there too."""
    course = fresh_course(include_ags=False)
    t = course.teacher
    index = t.get("/grades/")
    assert index.status_code == 200
    assert "has not offered Pathways a gradebook" in index.text
    with db.begin() as session:
        context_id = lti.course_id(session, course.lms_context_id)
        competency = create_competency(session, context_id=context_id, code="NG", title="No AGS")
    saved = t.follow(t.post("/grades/columns", {"competency": [str(competency.id)]}))
    assert saved.status_code == 200
    sync = t.get("/grades/sync")
    assert sync.status_code == 200
    assert "has not offered Pathways a gradebook" in sync.text


def test_a_long_problem_list_says_it_is_cut_and_columns_are_in_words(
    make_course: Callable[..., GradeCourse], lti: LtiActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More failures than the page lists: the teacher is told the list is cut, and that Retry
    with nothing ticked covers the rest too. Column states are words, not "ready"."""
    from lti_app.grades import views as grade_views

    course = make_course(students=6, competencies=1)
    _failed_scores(course)
    monkeypatch.setattr(grade_views, "PROBLEMS_SHOWN", 4)
    teacher = _teacher(lti, course.lms_context_id)
    page = teacher.get("/grades/sync")
    assert page.text.count('name="id"') == 4
    assert "Only the newest 4 problems are listed" in page.text
    assert ": in the LMS gradebook" in page.text
    assert ": ready" not in page.text
    monkeypatch.setattr(grade_views, "PROBLEMS_SHOWN", 200)
    assert "Only the newest" not in teacher.get("/grades/sync").text
