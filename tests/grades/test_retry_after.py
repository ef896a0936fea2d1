"""Retry-After from the token endpoint and from column (line item) requests: the LMS is left
alone for as long as it said, as it is after a score's 429."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete

from lti_app.db import utcnow
from lti_app.demo.state import Fault
from lti_app.grades.models import OutboxStatus
from lti_app.tool.models import ServiceToken
from tests.grades.conftest import GradeCourse, outbox_rows


def test_a_throttled_token_endpoint_is_left_alone_for_its_retry_after(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # columns
    course.record(3)
    with course.db.begin() as session:
        session.execute(delete(ServiceToken).where(ServiceToken.platform_id == course.platform_id))
    platform = course.lms.platform
    platform.queue_faults("token", Fault(429, {"Retry-After": "120"}))
    worker = course.worker(backoff_base=2.0, backoff_cap=600.0)
    before = platform.counters.token_requests
    worker.drain()
    worker.drain()
    asked = platform.counters.token_requests - before
    assert asked == 1, f"token endpoint asked {asked} times within seconds of Retry-After: 120"
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 2
    waits = [(r.next_attempt_at - utcnow()).total_seconds() for r in rows]
    assert min(waits) >= 100, f"scores due again after {min(waits):.1f}s, not 120 s"


def test_a_throttled_column_request_is_left_alone_for_its_retry_after(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=2)
    platform = course.lms.platform
    platform.queue_faults("ags", Fault(429, {"Retry-After": "120"}))
    worker = course.worker(backoff_base=2.0, backoff_cap=600.0)
    before = platform.counters.requests["ags"]
    worker.drain()
    # The first column's request was throttled: the second column waits too, unasked.
    assert platform.counters.requests["ags"] - before == 1
    items = course.line_items().values()
    assert len(items) == 2
    for item in items:
        assert item.lease_until is not None
        wait = (item.lease_until - utcnow()).total_seconds()
        assert wait >= 100, f"column asked again after {wait:.1f}s, not the 120 s it said"


def test_a_column_request_answering_503_waits_at_least_its_retry_after(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    course.lms.platform.queue_faults("ags", Fault(503, {"Retry-After": "300"}))
    course.worker(backoff_base=2.0, backoff_cap=600.0).drain()
    (item,) = course.line_items().values()
    assert item.lease_until is not None
    wait = (item.lease_until - utcnow()).total_seconds()
    assert wait >= 280, f"column asked again after {wait:.1f}s, not the 300 s it said"
