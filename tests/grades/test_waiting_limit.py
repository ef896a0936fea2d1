"""Scores held back by the LMS rather than refused (its token endpoint down or throttling, a
gradebook column it keeps failing to set up) wait as long as scores whose own POST fails:
three days of the LMS not being there (what counts: tests/grades/test_waiting_clock.py). Then
they fail with words a teacher can act on, are kept, and Retry sends them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, update

from lti_app.db import utcnow
from lti_app.demo.seed import TEACHER
from lti_app.demo.state import Fault
from lti_app.grades.models import OutboxStatus, ScoreOutbox
from lti_app.grades.outbox_status import list_problems, retry
from lti_app.grades.worker import GradeWorker
from lti_app.tool.models import ServiceToken
from tests.conftest import LtiActions
from tests.courses.frames import frame
from tests.grades.conftest import GradeCourse, outbox_rows

DAYS = timedelta(days=3)


def _forget_tokens(course: GradeCourse) -> None:
    with course.db.begin() as session:
        session.execute(delete(ServiceToken).where(ServiceToken.platform_id == course.platform_id))


def _queued_long_ago(course: GradeCourse) -> None:
    """Three days and a minute pass for every score of the course, all of them spent waiting
    for the LMS (as opposed to for the operator or an LMS admin: those do not count)."""
    long_ago = utcnow() - DAYS - timedelta(minutes=1)
    with course.db.begin() as session:
        session.execute(
            update(ScoreOutbox)
            .where(ScoreOutbox.context_id == course.context_id)
            .values(created_at=long_ago, waiting_since=long_ago)
        )


def _drain_until_failed(course: GradeCourse, worker: GradeWorker, n: int) -> None:
    """Drain until `n` scores failed: rows held by a platform's pause are due when it ends."""
    for _ in range(250):
        worker.drain()
        if course.counts()[OutboxStatus.FAILED] >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"the scores did not fail: {course.counts()}")


def _failure_lines(course: GradeCourse) -> list[str]:
    """What the teacher's "Gradebook sync" page lists for the failed scores."""
    with course.db.session_factory() as session:
        problems = list_problems(session, context_id=course.context_id)
    return [f"Failed: {p.reason}" for p in problems if p.status is OutboxStatus.FAILED]


def _retry_and_send(course: GradeCourse) -> None:
    """The teacher presses Retry (none selected: every problem), and the worker sends."""
    with course.db.begin() as session:
        outlook = retry(session, context_id=course.context_id)
    assert outlook.will_send == len(course.students)
    course.drain_until_settled(course.worker(retry_transient_for=DAYS))
    course.assert_lms_matches_mastery()


def test_scores_held_by_a_token_endpoint_down_for_days_fail_and_can_be_resent(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    _forget_tokens(course)
    platform = course.lms.platform
    platform.set_outage("token", Fault(503))
    worker = course.worker(retry_transient_for=DAYS)
    worker.drain()
    assert course.counts()[OutboxStatus.PENDING] == 2  # a while: waiting, nothing used up
    _queued_long_ago(course)
    _drain_until_failed(course, worker, 2)
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.FAILED] * 2
    lines = _failure_lines(course)
    assert len(lines) == 2
    for line in lines:
        assert "token endpoint answered 503" in line, line
        assert "will retry" not in line, line
        assert "Pathways waited 3 days for the LMS and stopped trying; the score is kept." in line
        assert "An LMS administrator can check that the LMS is up" in line, line
        assert line.endswith("press Retry to send it again."), line
    # Kept: once the endpoint answers, Retry sends them.
    platform.set_outage("token", None)
    _retry_and_send(course)


def test_scores_held_by_a_token_endpoint_throttling_for_days_fail_and_say_so(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    _forget_tokens(course)
    platform = course.lms.platform
    platform.set_outage("token", Fault(429, {"Retry-After": "1"}))
    _queued_long_ago(course)
    _drain_until_failed(course, course.worker(retry_transient_for=DAYS), 2)
    for line in _failure_lines(course):
        assert "throttling Pathways (429)" in line, line
        assert "will retry" not in line, line
        assert "limits on how many requests Pathways may make" in line, line
    platform.set_outage("token", None)
    _retry_and_send(course)


def test_scores_waiting_for_a_column_the_lms_keeps_failing_to_make_fail_after_days(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    platform = course.lms.platform
    platform.set_outage("ags", Fault(503))  # every column request, never a score
    course.record(3)
    worker = course.worker(retry_transient_for=DAYS)
    worker.drain()
    assert course.counts()[OutboxStatus.PENDING] == 2
    _queued_long_ago(course)
    _drain_until_failed(course, worker, 2)
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.FAILED] * 2
    lines = _failure_lines(course)
    assert len(lines) == 2
    for line in lines:
        assert "gradebook column “C1 Competency 1” could not be set up in the LMS" in line, line
        assert "(503)" in line, line
        assert "will retry" not in line, line
        assert "Pathways waited 3 days for the column" in line, line
        assert "An LMS administrator can check" in line, line
        assert line.endswith("press Retry to send it again."), line
    platform.set_outage("ags", None)
    _retry_and_send(course)


def test_a_retried_score_gets_its_days_again(
    make_course: Callable[..., GradeCourse],
) -> None:
    """A score that failed after days of a token outage, sent again while it lasts, waits
    again instead of failing at its first wait."""
    course = make_course(students=1, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    _forget_tokens(course)
    course.lms.platform.set_outage("token", Fault(503))
    _queued_long_ago(course)
    _drain_until_failed(course, course.worker(retry_transient_for=DAYS), 1)
    with course.db.begin() as session:
        retry(session, context_id=course.context_id)
    course.worker(retry_transient_for=DAYS).drain()
    assert course.counts()[OutboxStatus.PENDING] == 1


def test_the_sync_page_says_scores_wait_for_a_token_outage_then_offers_retry(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    teacher = frame(lti.launch(TEACHER.user_id, context_id=course.lms_context_id), lti.tool.url)
    course.record(3)
    _forget_tokens(course)
    platform = course.lms.platform
    platform.set_outage("token", Fault(503))
    worker = course.worker(retry_transient_for=DAYS)
    worker.drain()
    page = teacher.get("/grades/sync").text
    assert page.count("Waiting: The LMS token endpoint answered 503") == 2, page
    _queued_long_ago(course)
    _drain_until_failed(course, worker, 2)
    page = teacher.get("/grades/sync").text
    assert page.count("Failed: The LMS token endpoint answered 503.") == 2, page
    assert 'name="id"' in page  # each can be picked for Retry
    platform.set_outage("token", None)
    answer = teacher.follow(teacher.post("/grades/retry"))
    assert "2 result(s) will be sent again" in answer.text, answer.text
    course.drain_until_settled(course.worker(retry_transient_for=DAYS))
    course.assert_lms_matches_mastery()
