"""Roster sync against an LMS that throttles as Canvas does.

Canvas's request throttle (instructure/canvas-lms app/middleware/request_throttle.rb,
doc/api/throttling.md) answers 403 "403 Forbidden (Rate Limit Exceeded)" with
`X-Rate-Limit-Remaining: 0.0`, not 429, and its bucket is one per developer key for all LTI
Advantage requests: while the grade worker sends a class's scores, the roster can be
throttled too. The answers come from the test LMS (lti1p3platform) on loopback.
"""

from __future__ import annotations

from collections.abc import Callable

from lti_app.db import Database
from lti_app.demo.app import CANVAS_THROTTLED
from lti_app.demo.server import RunningPlatform
from lti_app.roster import services
from lti_app.roster.client import NrpsClient
from lti_app.roster.jobs import sync_roster
from lti_app.roster.models import SyncStatus

from .conftest import RosterCourse


def test_a_throttled_roster_sync_says_it_will_try_again_not_that_a_setting_is_off(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lms: RunningPlatform,
) -> None:
    course = make_roster_course(students=4)
    lms.platform.set_outage("nrps", CANVAS_THROTTLED)
    result = sync_roster(db, nrps, context_id=course.context_id)
    assert not result.ok
    assert "try again later" in result.message
    # Not sent to check the service and privacy settings, which are right.
    assert "enabled" not in result.message
    lms.platform.set_outage("nrps", None)
    result = sync_roster(db, nrps, context_id=course.context_id)
    assert result.ok, result.message
    assert result.members == 4


def test_a_throttled_differences_sync_is_not_followed_by_a_full_sync(
    make_roster_course: Callable[..., RosterCourse],
    nrps: NrpsClient,
    db: Database,
    lms: RunningPlatform,
) -> None:
    course = make_roster_course(students=4)
    assert sync_roster(db, nrps, context_id=course.context_id).ok
    with db.begin() as session:
        row = services.get_roster_sync(session, context_id=course.context_id)
        assert row is not None
        # As a platform that offers NRPS `differences` links leaves it after a full sync.
        row.differences_url = lms.platform.memberships_url(course.lms_context_id) + "?since=1"
    lms.platform.set_outage("nrps", CANVAS_THROTTLED)
    before = lms.platform.counters.requests["nrps"]
    result = sync_roster(db, nrps, context_id=course.context_id, full=False)
    assert not result.ok
    # Falling back to every page of the roster would only spend more of the throttled quota.
    assert lms.platform.counters.requests["nrps"] - before == 1
    with db.session_factory() as session:
        row = services.get_roster_sync(session, context_id=course.context_id)
        assert row is not None
        assert row.status is SyncStatus.FAILED
        assert "try again later" in row.last_error
        assert row.differences_url is not None  # kept for the next, quieter, sync
