"""The three days a score waits for an LMS that is down or throttling count only time in which
Pathways was allowed to send it: not days the operator kept the registration disabled, nor
days the course waited for an LMS administrator (README: such scores "wait (pending, sent once
it is enabled)"). The first throttle after such a hold must not fail the whole backlog."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, select

from lti_app.demo.state import Fault
from lti_app.grades.models import OutboxStatus, ScoreOutbox
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_LINEITEM_READ
from lti_app.tool.models import ServiceToken
from tests.conftest import registration_disabled
from tests.grades.conftest import GradeCourse, outbox_rows

DAYS = timedelta(days=3)


def _four_days_pass(course: GradeCourse) -> None:
    """Four days pass for every score of the course: each of its clocks moves back."""
    with course.db.begin() as session:
        for row in session.scalars(
            select(ScoreOutbox).where(ScoreOutbox.context_id == course.context_id)
        ):
            for clock in ("created_at", "waiting_since"):
                if getattr(row, clock, None) is not None:
                    setattr(row, clock, getattr(row, clock) - timedelta(days=4))


def _refuse_sending_scores(course: GradeCourse) -> None:
    """The registration does not allow sending scores (Moodle's "grade sync" off for it)."""
    with course.db.begin() as session:
        session.execute(delete(ServiceToken).where(ServiceToken.platform_id == course.platform_id))
    course.lms.platform.revoke_tokens()
    course.lms.platform.granted_scopes = frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READ})


def _waiting_for_the_admin(course: GradeCourse) -> None:
    worker = course.worker(retry_transient_for=DAYS)
    worker.drain()
    worker.drain()
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * len(rows)
    assert all("sending scores" in r.last_error for r in rows), [r.last_error for r in rows]


def _throttled(course: GradeCourse) -> None:
    """Every request throttled for one pass: the scores wait (and the LMS's pause with them)."""
    course.lms.platform.set_outage("ags", Fault(429, {"Retry-After": "1"}))
    course.worker(retry_transient_for=DAYS).drain()
    course.lms.platform.set_outage("ags", None)
    assert course.counts()[OutboxStatus.PENDING] == 2
    time.sleep(1.2)  # the pause ends


def _one_throttle_then_sent(course: GradeCourse, fault: Fault | None = None) -> None:
    """The LMS throttles the first request once (Retry-After: 1), then takes every score."""
    course.lms.platform.queue_faults("ags", fault or Fault(429, {"Retry-After": "1"}))
    worker = course.worker(retry_transient_for=DAYS)
    worker.drain()
    rows = outbox_rows(course.db, course.context_id)
    failed = [r.last_error for r in rows if r.status is OutboxStatus.FAILED]
    assert failed == [], failed
    time.sleep(1.2)
    course.drain_until_settled(worker)
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.SENT] * len(rows), [r.last_error for r in rows]
    course.assert_lms_matches_mastery()


def test_scores_kept_while_the_registration_was_disabled_survive_one_throttle(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    with registration_disabled(course.db, course.platform_id):
        course.record(3)
        course.worker(retry_transient_for=DAYS).drain()
        assert course.counts()[OutboxStatus.PENDING] == 2
        _four_days_pass(course)  # the operator kept it disabled
    _one_throttle_then_sent(course)


def test_scores_kept_while_a_course_waited_for_the_admin_survive_one_throttle(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    _refuse_sending_scores(course)
    course.record(3)
    _waiting_for_the_admin(course)
    _four_days_pass(course)
    course.lms.platform.granted_scopes = course.lms.platform.config.granted_scopes  # allowed
    _one_throttle_then_sent(course)


def test_days_the_registration_was_disabled_do_not_add_to_a_throttle_before_them(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    _throttled(course)
    with registration_disabled(course.db, course.platform_id):
        course.worker(retry_transient_for=DAYS).drain()
        _four_days_pass(course)
    _one_throttle_then_sent(course)


def test_days_a_course_waited_for_the_admin_do_not_add_to_a_throttle_before_them(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    _throttled(course)
    _refuse_sending_scores(course)
    _waiting_for_the_admin(course)
    _four_days_pass(course)
    course.lms.platform.granted_scopes = course.lms.platform.config.granted_scopes  # allowed
    _one_throttle_then_sent(course)


def test_scores_whose_column_waited_for_the_enabling_survive_one_column_failure(
    make_course: Callable[..., GradeCourse],
) -> None:
    """The column was not made while the registration was disabled; its first request after
    the enabling answers 503."""
    course = make_course(students=2, competencies=1)
    with registration_disabled(course.db, course.platform_id):
        course.record(3)
        course.worker(retry_transient_for=DAYS).drain()
        assert course.counts()[OutboxStatus.PENDING] == 2
        _four_days_pass(course)
    _one_throttle_then_sent(course, Fault(503))
