"""An LMS that answers a score with a redirect (301/302): its address changed, which only an
admin can fix. The scores wait, without using up their tries, and the course says where the
LMS pointed, instead of each score failing with "The LMS refused the score (301): "."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from lti_app.demo.state import Fault
from lti_app.grades.models import Gradebook, OutboxStatus
from lti_app.grades.outbox_status import retry
from tests.grades.conftest import GradeCourse, outbox_rows

MOVED_TO = "https://lms.example.edu/api/lti/courses/7/line_items/3/scores"


def _gradebook_error(course: GradeCourse) -> str:
    with course.db.session_factory() as session:
        gradebook = session.scalar(
            select(Gradebook).where(Gradebook.context_id == course.context_id)
        )
        assert gradebook is not None
        return gradebook.last_error


@pytest.mark.parametrize("status", [301, 302])
def test_a_redirected_score_waits_for_an_admin_and_names_where_it_pointed(
    make_course: Callable[..., GradeCourse], status: int
) -> None:
    course = make_course(students=3, competencies=1)
    worker = course.worker(config_retry=3600)
    course.drain_until_settled(worker)  # columns
    platform = course.lms.platform
    platform.set_outage("ags", Fault(status, {"Location": MOVED_TO}, ""))
    course.record(3)
    worker.drain()
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 3
    assert all(r.attempts == 0 for r in rows), [r.attempts for r in rows]
    for reason in [*(r.last_error for r in rows), _gradebook_error(course)]:
        assert f"redirect ({status}) to {MOVED_TO}" in reason, reason
        assert "administrator" in reason
    # Once the admin has fixed it, the teacher presses Retry and the scores go.
    platform.set_outage("ags", None)
    with course.db.begin() as session:
        retry(session, context_id=course.context_id)
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()
    assert _gradebook_error(course) == ""


def test_a_redirect_without_a_location_still_says_what_happened(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=1, competencies=1)
    worker = course.worker(config_retry=3600)
    course.drain_until_settled(worker)  # columns
    course.lms.platform.set_outage("ags", Fault(302, {}, ""))
    course.record(3)
    worker.drain()
    (row,) = outbox_rows(course.db, course.context_id)
    assert row.status is OutboxStatus.PENDING
    assert "redirect (302) without saying where to" in row.last_error
