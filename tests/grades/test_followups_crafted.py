"""Follow-ups of earlier reviews of the gradebook pages and the score worker: the numbers a
teacher is told match what the test LMS then receives, and a worker that could never send
refuses to start."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.state import Fault
from lti_app.grades.client import AGS_SCOPES
from lti_app.grades.models import LineItem, LineItemState, OutboxStatus
from lti_app.grades.worker import GradeWorker
from lti_app.tool.models import Membership, MembershipStatus
from tests.conftest import LtiActions

from .conftest import GradeCourse, outbox_rows
from .test_faults import platform_row
from .test_grades_ui_crafted import _teacher, _wait_for_roster


def _accepted(course: GradeCourse) -> int:
    """Scores of this course the test LMS has accepted so far."""
    mine = set(course.lms_item_ids().values())
    state = course.lms.platform.state
    with state.lock:
        return sum(1 for r in state.scores if r.line_item_id in mine and r.status == 200)


def _notice(page: str) -> str:
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', page, re.S)
    assert found is not None, page[:2000]
    return found.group(1)


def _drain(worker: GradeWorker, rounds: int = 5) -> None:
    """Drain a few times: rows waiting for a column that cannot be made never settle."""
    stop = threading.Event()
    for _ in range(rounds):
        worker.drain(stop)
        stop.wait(0.05)


def _leave_lms_course(course: GradeCourse, sub: str) -> None:
    """The student is taken out of the course in the LMS (the next roster sync sees it)."""
    old = seed.COURSES[course.lms_context_id]
    seed.COURSES[course.lms_context_id] = dataclasses.replace(
        old, enrollments=tuple(e for e in old.enrollments if e.user_id != sub)
    )


def test_retry_counts_only_what_the_lms_then_receives(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    """Every score failed; then a student left the course and the teacher turned one column
    off. "Retry" says how many results go again, and that is what the LMS gets: not the
    departed student's, not the turned-off column's (the page said 8 for 3)."""
    course = make_course(students=4, competencies=2)
    worker = course.worker()
    worker.sync_line_items()
    course.lms.platform.set_outage("ags", Fault(418, body="teapot"))
    course.record(3, competency=0)
    course.record(3, competency=1)
    course.drain_until_settled(worker)
    course.lms.platform.set_outage("ags", None)
    assert course.counts()[OutboxStatus.FAILED] == 8
    gone = "user-s04"
    _leave_lms_course(course, gone)
    teacher = _teacher(lti, course.lms_context_id)
    _wait_for_roster(db, course.context_id)
    with db.session_factory() as session:
        status = session.scalar(
            select(Membership.status).where(
                Membership.context_id == course.context_id,
                Membership.person_id == course.students[gone],
            )
        )
    assert status is not MembershipStatus.ACTIVE
    saved = teacher.post("/grades/columns", {"competency": [str(course.competency_ids[0])]})
    assert saved.status_code == 303
    page = teacher.get("/grades/sync")
    # The turned-off column's failures are listed, without a Retry box that would do nothing.
    assert page.text.count('name="id"') == 4
    assert page.text.count("no longer goes to the gradebook") == 4
    before = _accepted(course)
    answer = teacher.follow(teacher.post("/grades/retry"))
    assert answer.status_code == 200
    notice = _notice(answer.text)
    assert notice.startswith("3 result(s) will be sent again."), notice
    assert "1 result(s) of people who are not active students" in notice
    course.drain_until_settled(worker)
    assert _accepted(course) - before == 3
    # The turned-off column's rows did not start waiting for a send that never comes.
    rows = outbox_rows(db, course.context_id)
    off = {r.status for r in rows if r.competency_id == course.competency_ids[1]}
    assert off == {OutboxStatus.FAILED}
    departed = [r.status for r in rows if r.person_id == course.students[gone]]
    assert OutboxStatus.SKIPPED in departed


def test_display_change_counts_only_scores_a_column_can_take(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    """The LMS refused to make one of two columns. Switching to percentages says how many
    results go now (those of the column that exists) and that the others wait, and the LMS
    receives exactly that many (the page said 6 for 3)."""
    course = make_course(students=3, competencies=2)
    with db.begin() as session:  # the second column comes later, when the LMS refuses it
        session.execute(
            update(LineItem)
            .where(LineItem.competency_id == course.competency_ids[1])
            .values(is_enabled=False)
        )
    course.record(3, competency=0)
    course.record(2, competency=1)
    worker = course.worker()
    course.drain_until_settled(worker)
    teacher = _teacher(lti, course.lms_context_id)
    course.lms.platform.set_outage("ags", Fault(400, body="no more columns"))
    both = {"competency": [str(c) for c in course.competency_ids]}
    added = teacher.follow(teacher.post("/grades/columns", both))
    assert "Gradebook columns saved. 3 current results will be sent." in added.text
    worker.sync_line_items()
    course.lms.platform.set_outage("ags", None)
    assert course.line_items()[course.competency_ids[1]].state is LineItemState.FAILED
    before = _accepted(course)
    answer = teacher.follow(teacher.post("/grades/display", {"display": "percent"}))
    assert answer.status_code == 200
    notice = _notice(answer.text)
    assert notice.startswith("Saved. 3 current results will be sent again this way."), notice
    assert "3 result(s) wait until their LMS gradebook column can be made" in notice
    _drain(worker)
    assert _accepted(course) - before == 3


@pytest.mark.parametrize("concurrency", [0, -1])
def test_worker_refuses_a_concurrency_that_could_never_send(
    make_course: Callable[..., GradeCourse], concurrency: int
) -> None:
    """With no sending slot, drain would spin a CPU for ever with nothing sent; the API says
    so at once, as the CLI does for its option."""
    course = make_course(students=1, competencies=1)
    with pytest.raises(ValueError, match="concurrency must be 1 or more"):
        course.worker(concurrency=concurrency)


def _shown(page: str, label: str) -> int:
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>(\d+)</dd>", page)
    assert found is not None, label
    return int(found.group(1))


def test_results_of_a_turned_off_column_are_not_shown_as_waiting(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    """The LMS answered 503 and results waited; then the teacher turned the column off. The
    sync page stops saying they wait (they never go: the worker sends nothing to a column
    that is off), and says what became of them."""
    course = make_course(students=2, competencies=1)
    worker = course.worker()
    worker.sync_line_items()
    course.lms.platform.set_outage("ags", Fault(503))
    course.record(3)
    worker.drain()
    assert course.counts()[OutboxStatus.PENDING] == 2
    teacher = _teacher(lti, course.lms_context_id)
    assert _shown(teacher.get("/grades/sync").text, "Waiting or being sent") == 2
    teacher.post("/grades/columns", {})
    course.lms.platform.set_outage("ags", None)
    before = _accepted(course)
    _drain(worker)
    assert _accepted(course) == before
    page = teacher.get("/grades/sync").text
    assert _shown(page, "Waiting or being sent") == 0
    assert _shown(page, "Not sent (the competency no longer goes to the gradebook)") == 2


def test_results_waiting_for_an_lms_administrator_are_not_counted_as_going(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    """The LMS refused Pathways' service token: every result waits for its administrator.
    Switching the display says so rather than "will be sent again", and Retry, pressed once
    the admin has fixed it, sends them and says how many (the page said 3 for 0)."""
    course = make_course(students=3, competencies=1)
    platform = course.lms.platform
    worker = course.worker(config_retry=3600)
    course.drain_until_settled(worker)  # the column exists
    worker.ags._tokens.drop(platform_row(db, course.platform_id), AGS_SCOPES)
    platform.revoke_tokens()
    platform.token_refusal = (401, "unauthorized_client")
    course.record(3)
    worker.drain()
    teacher = _teacher(lti, course.lms_context_id)
    answer = teacher.follow(teacher.post("/grades/display", {"display": "percent"}))
    assert answer.status_code == 200
    notice = _notice(answer.text)
    assert notice.startswith("Saved. 0 current results will be sent again this way."), notice
    assert "3 result(s) wait for an LMS administrator" in notice
    assert "needs attention from an LMS administrator" in answer.text
    platform.reset_hooks()
    before = _accepted(course)
    retried = _notice(teacher.follow(teacher.post("/grades/retry")).text)
    assert retried.startswith("3 result(s) will be sent again."), retried
    assert "administrator" not in retried
    course.drain_until_settled(worker)
    assert _accepted(course) - before == 3


@pytest.mark.parametrize("known_to_the_lms", [True, False], ids=["bound", "module-link"])
def test_columns_bind_to_the_teachers_placement_or_go_unbound_when_the_lms_refuses(
    make_course: Callable[..., GradeCourse], db: Database, known_to_the_lms: bool
) -> None:
    """Columns are made bound to the placement the teacher launched from. Canvas gives a
    module launch a resource link id no column may name (canvas-lms#1944: "The specified
    resource does not exist"): the column is then made unbound rather than failing for good,
    and every score still arrives."""
    course = make_course(students=2, competencies=2)
    link_id = course.bind_columns_to_placement(known_to_the_lms=known_to_the_lms)
    course.record(3, competency=0)
    course.record(2, competency=1)
    worker = course.worker()
    course.drain_until_settled(worker)
    assert {i.state for i in course.line_items().values()} == {LineItemState.READY}
    course.assert_lms_matches_mastery()
    made = course.lms.platform.state.line_items_in(course.lms_context_id)
    expected_link = link_id if known_to_the_lms else None
    assert [li.resource_link_id for li in made] == [expected_link, expected_link]
