"""Spec review probes of the gradebook client (AGS 2.0, Security Framework 1.0 §4.1).

Written from the specs rather than from a platform: each test scripts a spec-valid (or
spec-adjacent) answer the crafted-LMS suites did not yet cover. Fixtures and the fake LMS
come from tests/grades/test_ags_crafted.py.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from tests.grades.conftest import GradeCourse
from tests.grades.test_ags_crafted import (
    CONTAINER,
    FakeGradebook,
    _ready,
    all_sent,
    drain_bounded,
    make_ags,  # noqa: F401 - fixture
    remote_item,
    score_posts,
)
from tests.roster.test_nrps_crafted import (
    Answer,
    FakeLms,
    Seen,
    make_lms,  # noqa: F401 - fixture
)

MakeAgs = Callable[..., tuple[GradeCourse, FakeGradebook]]


# --- Security Framework §4.1: one token refresh, not a storm ---------------------------------


def test_a_token_expiring_mid_run_is_refreshed_once_for_every_score_in_flight(
    make_ags: MakeAgs,  # noqa: F811
) -> None:
    """The LMS revokes the first token while a whole class of scores is on the wire: every
    one of them answers 401. One new token serves them all; each 401 asking for its own
    token (and dropping the one another thread just got) is a token storm Canvas throttles."""
    course, gradebook = make_ags(students=6)
    worker = _ready(course, gradebook)
    first = gradebook.lms.requests("/ags")[0].authorization
    assert first is not None

    refused = itertools.count()

    def expired_first(seen: Seen) -> Answer | None:
        if seen.path.endswith("/scores") and seen.authorization == first:
            # One after another, each once the previous one's new token is in use (the
            # delays order the answers, nothing is timed).
            return Answer(401, {"error": "invalid_token"}, delay=0.2 + 0.2 * next(refused))
        return None

    gradebook.override = expired_first
    course.record(3)
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    assert gradebook.lms.token_requests == 2


# --- AGS §3.2 line item container paging --------------------------------------------------


def test_a_line_item_next_page_on_another_host_gets_no_token(
    make_ags: MakeAgs,  # noqa: F811
    make_lms: Callable[[], FakeLms],  # noqa: F811
) -> None:
    course, gradebook = make_ags()
    foreign = make_lms()
    foreign.route = lambda seen: Answer(200, [])

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            link = f'<{foreign.url(CONTAINER)}?page=2>; rel="next"'
            return Answer(200, [], [("Link", link)])
        return None

    gradebook.override = listing
    course.record(3)
    course.drain_until_settled(course.worker(timeout=2))
    all_sent(course, gradebook)
    assert not [s for s in foreign.seen if s.authorization]


def test_a_line_item_next_link_with_several_rels_is_followed(
    make_ags: MakeAgs,  # noqa: F811
) -> None:
    """RFC 8288 §3.3: `rel` may hold several space-separated types (`next last`)."""
    course, gradebook = make_ags()
    gradebook.items[1] = remote_item(course)
    next(gradebook._ids)

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            if seen.query.get("page") == "2":
                return Answer(200, [gradebook.item_json(1)])
            url = gradebook.container_url + "?page=2"
            return Answer(
                200,
                [],
                [("Link", f'<{url}>; rel="last next", <{gradebook.container_url}>; rel=first')],
            )
        return None

    gradebook.override = listing
    course.record(3)
    course.drain_until_settled(course.worker(timeout=2))
    all_sent(course, gradebook)
    assert gradebook.created == 0


# --- AGS §3.4 score shape; §3.2 line item fields --------------------------------------------


def test_scores_follow_the_spec_shape(make_ags: MakeAgs) -> None:  # noqa: F811
    """AGS §3.4: userId, scoreGiven <= a positive scoreMaximum, activityProgress and
    gradingProgress from the spec's vocabularies, an ISO 8601 timestamp with an offset."""
    course, gradebook = make_ags()
    course.record(3)
    course.drain_until_settled(course.worker(timeout=2))
    all_sent(course, gradebook)
    for post in score_posts(gradebook.lms):
        body = json.loads(post.body)
        assert body["activityProgress"] in {
            "Initialized",
            "Started",
            "InProgress",
            "Submitted",
            "Completed",
        }
        assert body["gradingProgress"] in {
            "FullyGraded",
            "Pending",
            "PendingManual",
            "Failed",
            "NotReady",
        }
        assert isinstance(body["scoreGiven"], int | float)
        assert body["scoreMaximum"] > 0


def test_a_line_item_with_an_overflowing_score_maximum_does_not_stop_the_worker(
    make_ags: MakeAgs,  # noqa: F811
) -> None:
    """A JSON number past float range (`scoreMaximum: 1000…0`, 400 digits) is a valid JSON
    number; it must not raise out of the line item sync, which runs before every drain (and
    would then hold every course's scores)."""
    course, gradebook = make_ags()
    gradebook.items[1] = {**remote_item(course), "scoreMaximum": 10**400}
    next(gradebook._ids)
    course.record(3)
    worker = course.worker(timeout=2)
    _ended, error = drain_bounded(worker, 10)
    assert error is None, f"drain raised {type(error).__name__}: {error}"
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    assert gradebook.created == 0
