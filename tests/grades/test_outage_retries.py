"""An LMS down for hours (a Moodle upgrade in maintenance mode, a Canvas incident): scores keep
being tried for days, and a score that does stop says so, instead of "Pathways will retry"."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from lti_app.db import utcnow
from lti_app.demo.state import Fault
from lti_app.grades.models import OutboxStatus, ScoreOutbox
from lti_app.grades.outbox_status import list_problems
from lti_app.grades.worker import GradeWorker
from tests.grades.conftest import GradeCourse, outbox_rows


def _failure_lines(course: GradeCourse) -> list[str]:
    """What the teacher's "Gradebook sync" page lists for the failed scores."""
    with course.db.session_factory() as session:
        problems = list_problems(session, context_id=course.context_id)
    return [f"Failed: {p.reason}" for p in problems if p.status is OutboxStatus.FAILED]


def _drain_for_tries(course: GradeCourse, worker: GradeWorker, tries: int) -> None:
    wait = threading.Event()
    for _ in range(400):
        worker.drain()
        if min(r.attempts for r in outbox_rows(course.db, course.context_id)) >= tries:
            return
        wait.wait(0.02)
    raise AssertionError("the scores were not tried again")


def test_an_lms_down_past_the_tries_keeps_its_scores_for_days(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    worker = course.worker(max_attempts=3, retry_transient_for=timedelta(days=3))
    course.drain_until_settled(worker)  # columns
    course.lms.platform.set_outage("ags", Fault(503))
    course.record(3)
    _drain_for_tries(course, worker, 6)  # twice the tries, and still going
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 2
    assert _failure_lines(course) == []
    # Three days of outage later it stops, and says so.
    with course.db.begin() as session:
        session.execute(
            update(ScoreOutbox)
            .where(ScoreOutbox.context_id == course.context_id)
            .values(
                created_at=utcnow() - timedelta(days=3, minutes=1),
                waiting_since=utcnow() - timedelta(days=3, minutes=1),
            )
        )
    course.drain_until_settled(worker)
    course.lms.platform.set_outage("ags", None)
    lines = _failure_lines(course)
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("Failed: The LMS could not take the score (503). Pathways stopped")
        assert "over 3 days; press Retry" in line, line
        assert "will retry" not in line, line


def test_a_failed_score_does_not_say_pathways_will_retry(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    worker = course.worker(max_attempts=3, retry_transient_for=timedelta(0))  # no days
    course.drain_until_settled(worker)  # columns
    course.lms.platform.set_outage("ags", Fault(503))
    course.record(3)
    course.drain_until_settled(worker)
    course.lms.platform.set_outage("ags", None)
    assert course.counts()[OutboxStatus.FAILED] == 2
    lines = _failure_lines(course)
    assert len(lines) == 2
    for line in lines:
        assert "will retry" not in line, line
        assert "Pathways stopped after 3 tries over less than a minute; press Retry" in line


def test_a_refused_score_fails_after_its_tries_whatever_the_days(
    make_course: Callable[..., GradeCourse],
) -> None:
    # An answer Pathways cannot use (not the LMS being down) is not tried for days.
    course = make_course(students=1, competencies=1)
    worker = course.worker(max_attempts=2, retry_transient_for=timedelta(days=3))
    course.drain_until_settled(worker)  # columns
    course.lms.platform.set_outage("ags", Fault(409))
    course.record(3)
    course.drain_until_settled(worker)
    course.lms.platform.set_outage("ags", None)
    assert course.counts()[OutboxStatus.FAILED] == 1
