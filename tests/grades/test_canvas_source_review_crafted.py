"""Scores against a gradebook that throttles as Canvas does.

Canvas's request throttle (instructure/canvas-lms app/middleware/request_throttle.rb,
doc/api/throttling.md) answers 403 with the text body "403 Forbidden (Rate Limit Exceeded)",
`X-Rate-Limit-Remaining: 0.0` and no Retry-After, for as long as a developer key's bucket is
full: one bucket for all of the key's LTI Advantage requests (line items, scores, roster) and,
by client IP, its token endpoint. The answers come from the test LMS (lti1p3platform) on
loopback through its fault hook.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.app import CANVAS_THROTTLED
from lti_app.grades.client import AGS_SCOPES
from lti_app.grades.columns import set_display
from lti_app.grades.models import Gradebook, GradeDisplay, OutboxStatus
from lti_app.tool.models import Platform

from .conftest import GradeCourse, outbox_rows


def _wait_until_due(course: GradeCourse) -> None:
    worker = course.workers[-1]
    deadline = time.monotonic() + 20
    while (due := worker.next_due_in()) is not None and due > 0:
        assert time.monotonic() < deadline, "no score became due again"
        time.sleep(min(due, 0.05))


def test_scores_outlast_a_canvas_throttle_longer_than_the_retry_limit(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=3, competencies=1)
    platform = course.lms.platform
    # Pauses of a few tenths of a second, so that a pass ends before its pause does.
    worker = course.worker(max_attempts=2, backoff_base=0.2, backoff_cap=0.2)
    course.drain_until_settled(worker)  # the column exists before the throttle
    platform.set_outage("ags", CANVAS_THROTTLED)
    course.record(3)
    before = platform.counters.requests["ags"]
    for _ in range(5):  # more throttled passes than the worker's attempts for a score
        worker.drain()
        _wait_until_due(course)
    assert platform.counters.requests["ags"] - before >= 5
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 3
    assert all("throttling" in r.last_error for r in rows), [r.last_error for r in rows]
    platform.set_outage("ags", None)
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()
    assert course.counts()[OutboxStatus.FAILED] == 0


def test_a_canvas_throttle_pauses_the_sending_instead_of_sending_every_score_into_it(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=6, competencies=1)
    platform = course.lms.platform
    worker = course.worker(concurrency=1, backoff_base=60, backoff_cap=60)
    course.drain_until_settled(worker)
    platform.set_outage("ags", CANVAS_THROTTLED)
    course.record(3)
    before = platform.counters.requests["ags"]
    worker.drain()
    # One refused score is enough to know the other five would be refused too.
    assert platform.counters.requests["ags"] - before == 1
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 6
    assert all(r.attempts == 0 for r in rows)  # waiting is not a failed try
    # All wait for the same pause, not a retry each on its own short clock.
    assert len({r.next_attempt_at for r in rows}) == 1
    due = worker.next_due_in()
    assert due is not None
    assert due > 20


def test_a_throttled_token_endpoint_is_waited_out_not_reported_as_a_registration_problem(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=3, competencies=1)
    platform = course.lms.platform
    worker = course.worker(backoff_base=0.2, backoff_cap=0.2)
    course.drain_until_settled(worker)
    with course.db.session_factory() as session:
        registration = session.get(Platform, course.platform_id)
        assert registration is not None
    worker.ags._tokens.drop(registration, AGS_SCOPES)  # the hour is up: a new token is due
    platform.set_outage("token", CANVAS_THROTTLED)
    course.record(3)
    worker.drain()
    rows = outbox_rows(course.db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 3
    assert all("throttling" in r.last_error for r in rows), [r.last_error for r in rows]
    with course.db.session_factory() as session:
        gradebook = session.scalar(
            select(Gradebook).where(Gradebook.context_id == course.context_id)
        )
        assert gradebook is not None
        # The teacher's page does not send an admin to check a registration that is right.
        assert gradebook.last_error == ""
    platform.set_outage("token", None)
    _wait_until_due(course)
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()


def test_a_throttled_column_update_keeps_the_column_on_the_teachers_placement(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    """Moodle's 403 to a column naming a placement it will not bind to sends the column
    unbound; Canvas's throttle is a 403 too, but it only says "later": the update waits and
    the column stays on the teacher's placement, not a stray assignment of its own."""
    course = make_course(students=2, competencies=1)
    platform = course.lms.platform
    link_id = course.bind_columns_to_placement()
    course.record(3)
    worker = course.worker(backoff_base=0.2, backoff_cap=0.2)
    course.drain_until_settled(worker)
    with db.begin() as session:
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    platform.queue_faults("ags", CANVAS_THROTTLED)  # the update is refused once, throttled
    deadline = time.monotonic() + 20
    while any(i.needs_update for i in course.line_items().values()):
        assert time.monotonic() < deadline, "the column was never updated"
        worker.drain()
        time.sleep(0.05)  # the throttled column's short lease
    course.drain_until_settled(worker)
    (made,) = platform.state.line_items_in(course.lms_context_id)
    assert (made.resource_link_id, made.score_maximum) == (link_id, 100.0)


def test_after_a_throttle_fewer_scores_go_at_once_so_canvas_stops_refusing(
    make_course: Callable[..., GradeCourse],
) -> None:
    """Canvas charges each request in flight a share of the quota, so past a few at once it
    refuses the rest however long the worker pauses in between. The worker learns how many
    the LMS takes: the next competency's scores meet few refusals, not a dozen again."""
    course = make_course(students=30, competencies=2)
    platform = course.lms.platform
    worker = course.worker(concurrency=16, backoff_base=0.05, backoff_cap=0.05)
    course.drain_until_settled(worker)  # the columns exist before the throttle
    platform.ags_in_flight_limit = 4
    platform.delay_ms = 20  # each request stays in flight long enough to overlap
    course.record(3, competency=0)
    course.drain_until_settled(worker, rounds=1000)
    first_competency = platform.ags_throttled
    assert first_competency > 0
    course.record(3, competency=1)
    course.drain_until_settled(worker, rounds=1000)
    course.assert_lms_matches_mastery()
    refused_again = platform.ags_throttled - first_competency
    assert refused_again <= 4, (first_competency, refused_again)


def _comments_shown(course: GradeCourse, sub: str) -> list[str]:
    """What a student sees under the column's submission: every score's comment, in order,
    as Canvas adds each one (scores_controller.rb `add_comment`); the test LMS keeps them all."""
    (item,) = course.lms.platform.state.line_items_in(course.lms_context_id)
    return [
        record.body["comment"]
        for record in course.lms.platform.state.accepted_scores(item.id)
        if record.user_id == sub and record.body.get("comment")
    ]


def _points(course: GradeCourse, sub: str) -> float:
    (item,) = course.lms.platform.state.line_items_in(course.lms_context_id)
    return float(course.lms.platform.state.results(item.id)[sub].body["scoreGiven"])


@pytest.mark.parametrize("canvas", [True, False], ids=["canvas", "moodle"])
def test_a_level_is_commented_once_in_canvas_however_often_its_score_is_sent(
    make_course: Callable[..., GradeCourse], db: Database, canvas: bool
) -> None:
    """The teacher switched the gradebook to percent, then pressed "send again": each time
    every student's submission in Canvas got one more "Proficient" comment. Moodle replaces
    its feedback with each score and clears it for a score without one, so there the level
    goes with every score."""
    course = make_course(students=2, competencies=1, canvas_line_items=canvas)
    worker = course.worker()
    course.record(3)
    course.drain_until_settled(worker)
    sub = next(iter(course.students))
    (first,) = _comments_shown(course, sub)
    before = _points(course, sub)

    with db.begin() as session:
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    course.drain_until_settled(worker)
    assert _points(course, sub) != before  # the score itself was sent again
    with db.begin() as session:
        set_display(session, context_id=course.context_id, display=GradeDisplay.POINTS)
    course.drain_until_settled(worker)
    assert _points(course, sub) == before
    if canvas:
        assert _comments_shown(course, sub) == [first]
    else:
        assert _comments_shown(course, sub) == [first, first, first]

    course.record(1)  # a new level is a new comment, everywhere
    course.drain_until_settled(worker)
    shown = _comments_shown(course, sub)
    assert shown[-1] != first
    assert len(shown) == (2 if canvas else 4)


def test_a_column_made_again_in_canvas_gets_the_level_as_a_comment_again(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    """A comment stands only in the column it was sent to: a column the teacher deleted in
    Canvas and Pathways made again starts without comments."""
    course = make_course(students=2, competencies=1, canvas_line_items=True)
    state = course.lms.platform.state
    worker = course.worker()
    course.record(3)
    course.drain_until_settled(worker)
    sub = next(iter(course.students))
    (first,) = _comments_shown(course, sub)
    deleted_url = course.line_items()[course.competency_ids[0]].url
    assert deleted_url is not None
    state.delete_line_item(course.lms_item_ids()[deleted_url])  # the teacher, in Canvas

    with db.begin() as session:  # a change of points finds the column gone
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    course.drain_until_settled(worker)
    (made_again,) = state.line_items_in(course.lms_context_id)
    assert course.lms.platform.line_item_url(course.lms_context_id, made_again.id) != deleted_url
    assert _comments_shown(course, sub) == [first]
    assert sorted(state.results(made_again.id)) == sorted(course.students)
