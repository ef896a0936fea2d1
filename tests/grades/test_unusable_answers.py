"""An LMS answer about gradebook columns that no request could follow (an id or next link with a
malformed host) or that no parser can read (an error body nested thousands deep) stopped the
whole column pass: the worker's drain raised before it sent any score, and every column after
the bad one, of any course, waited behind it."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from lti_app.grades.models import LineItemState, OutboxStatus
from tests.grades.conftest import GradeCourse
from tests.grades.test_ags_crafted import (  # noqa: F401 - fixtures
    CONTAINER,
    FakeGradebook,
    drain_bounded,
    line_item,
    make_ags,
    remote_item,
)
from tests.roster.test_nrps_crafted import Answer, Seen, make_lms  # noqa: F401 - fixtures

MakeAgs = Callable[..., tuple[GradeCourse, FakeGradebook]]


@pytest.mark.parametrize("bad_id", ["http://[oops/1", "https://[::1/x"])
def test_a_line_item_id_no_request_can_go_to_is_passed_over(
    make_ags: MakeAgs,  # noqa: F811
    bad_id: str,
) -> None:
    course, gradebook = make_ags()

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            return Answer(200, [{**remote_item(course), "id": bad_id}])
        return None

    gradebook.override = listing
    course.record(3)
    ended, err = drain_bounded(course.worker(timeout=2, max_attempts=3), 10)
    assert err is None
    assert ended
    # Not the LMS's column (its id is unusable): Pathways made its own and sent the scores.
    assert line_item(course).state is LineItemState.READY
    assert course.counts()[OutboxStatus.SENT] == len(course.students)


def test_a_next_link_no_request_can_go_to_ends_the_listing(
    make_ags: MakeAgs,  # noqa: F811
) -> None:
    course, gradebook = make_ags()

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            return Answer(200, [], [("Link", '<http://[oops/p2>; rel="next"')])
        return None

    gradebook.override = listing
    course.record(3)
    ended, err = drain_bounded(course.worker(timeout=2, max_attempts=3), 10)
    assert err is None
    assert ended
    assert line_item(course).state is LineItemState.READY


def test_an_error_body_too_deep_to_parse_is_still_a_refusal(
    make_ags: MakeAgs,  # noqa: F811
) -> None:
    course, gradebook = make_ags()

    def refuse(seen: Seen) -> Answer | None:
        if seen.method == "POST" and seen.path == CONTAINER:
            return Answer(400, b"[" * 3000)
        return None

    gradebook.override = refuse
    course.record(3)
    ended, err = drain_bounded(course.worker(timeout=2, max_attempts=3), 10)
    assert err is None
    assert ended
    item = line_item(course)
    assert item.state is not LineItemState.READY
    assert "refused the new gradebook column (400)" in item.last_error  # what the teacher reads


def test_one_courses_unusable_answer_holds_up_no_other_course(
    make_ags: MakeAgs,  # noqa: F811
) -> None:
    bad_course, bad_gradebook = make_ags()
    good_course, _ = make_ags()

    def unreadable(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            return Answer(200, [], [("Link", '<http://[oops/p2>; rel="next"')])
        if seen.method == "POST" and seen.path == CONTAINER:
            return Answer(400, b"[" * 3000)
        return None

    bad_gradebook.override = unreadable
    bad_course.record(3)
    good_course.record(3)
    worker = good_course.worker(timeout=2)
    worker.config = dataclasses.replace(
        worker.config, context_ids=frozenset({bad_course.context_id, good_course.context_id})
    )
    worker.drain(threading.Event())
    assert line_item(good_course).state is LineItemState.READY
    assert good_course.counts()[OutboxStatus.SENT] == len(good_course.students)
