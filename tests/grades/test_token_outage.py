"""A token endpoint that is down, hung or unreachable: the platform is paused after the first
failure, instead of every score of the batch asking for its own token in turn."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete

from lti_app.db import utcnow
from lti_app.demo.state import Fault
from lti_app.grades.models import OutboxStatus
from lti_app.tool.models import ServiceToken
from tests.grades.conftest import GradeCourse, outbox_rows


def _forget_tokens(course: GradeCourse) -> None:
    with course.db.begin() as session:
        session.execute(delete(ServiceToken).where(ServiceToken.platform_id == course.platform_id))


def test_a_token_endpoint_outage_is_asked_once_not_once_per_score(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=30, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    _forget_tokens(course)
    worker = course.worker(concurrency=4, backoff_base=2.0, backoff_cap=600.0)
    platform = course.lms.platform
    platform.set_outage("token", Fault(503))
    before = platform.counters.token_requests
    worker.drain()
    asked = platform.counters.token_requests - before
    assert asked == 1, f"{asked} token requests for one drain of 30 scores"
    rows = outbox_rows(course.db, course.context_id)
    # Nothing lost, no try used up, and nothing due again before the pause ends.
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 30
    assert all(r.attempts == 0 for r in rows), [r.attempts for r in rows]
    assert all(r.next_attempt_at > utcnow() for r in rows)
    assert "token endpoint answered 503" in rows[0].last_error
    # Once the endpoint answers again, the scores go.
    platform.set_outage("token", None)
    course.drain_until_settled(course.worker())
    course.assert_lms_matches_mastery()


def test_a_hung_token_endpoint_holds_the_batch_for_one_timeout_not_one_per_score(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=12, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    _forget_tokens(course)
    worker = course.worker(concurrency=4, timeout=0.5, backoff_base=2.0, backoff_cap=600.0)
    platform = course.lms.platform
    platform.delay_ms = 700  # every request, the token endpoint's too, answers late
    try:
        start = time.monotonic()
        worker.drain()
        took = time.monotonic() - start
    finally:
        platform.delay_ms = 0
    # Before: 12 scores queued behind the token lock, each waiting out its own read timeout.
    assert took < 3, f"one drain took {took:.1f}s against a hung token endpoint"
    assert course.counts()[OutboxStatus.PENDING] == 12
