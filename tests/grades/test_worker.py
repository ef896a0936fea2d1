"""The score outbox end to end against the test LMS: happy path, ordering, faults."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete

from lti_app.grades.models import OutboxStatus
from lti_app.tool.models import ServiceToken
from tests.conftest import registration_disabled

from .conftest import GradeCourse


def test_a_disabled_registrations_scores_wait_until_it_is_enabled(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=3, competencies=1)
    state = course.lms.platform.state
    course.record(3)
    worker = course.worker()
    with registration_disabled(course.db, course.platform_id):
        worker.drain()
        # Not even its gradebook column is made while the registration is disabled.
        assert state.line_items_in(course.lms_context_id) == []
        assert course.counts()[OutboxStatus.PENDING] == 3
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()

    def delivered() -> int:
        mine = set(course.lms_item_ids().values())
        with state.lock:
            return sum(1 for r in state.scores if r.line_item_id in mine)

    sent = delivered()
    course.record(2)
    with registration_disabled(course.db, course.platform_id):
        worker.drain()
        assert delivered() == sent  # the column exists now: the scores themselves wait
        assert course.counts()[OutboxStatus.PENDING] == 3
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()


def test_scores_reach_the_gradebook_with_one_token(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=5, competencies=2)
    course.record(3)
    course.record(2, competency=1)
    platform = course.lms.platform
    with course.db.begin() as session:  # no token cached by earlier tests
        session.execute(delete(ServiceToken).where(ServiceToken.platform_id == course.platform_id))
    tokens_before = platform.counters.token_requests
    worker = course.worker()
    course.drain_until_settled(worker)
    assert platform.counters.token_requests - tokens_before == 1
    assert len(platform.state.line_items_in(course.lms_context_id)) == 2
    course.assert_lms_matches_mastery()
    mine = set(course.lms_item_ids().values())
    received = [
        r
        for r in platform.state.scores
        if r.user_id == "user-s01" and r.status == 200 and r.line_item_id in mine
    ]
    # One score per column, in whichever order the columns went: 3 and 2 points.
    assert sorted(r.body["comment"] for r in received) == ["Developing", "Proficient"]
    record = next(r for r in received if r.body["comment"] == "Proficient")
    assert record.body["gradingProgress"] == "FullyGraded"
    assert record.body["activityProgress"] == "Completed"
    assert record.body["scoreMaximum"] == 4.0
    assert "." in record.body["timestamp"]
    assert course.counts()[OutboxStatus.SENT] == 10
