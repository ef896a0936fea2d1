"""An LMS key that does not allow the roster service (Canvas: a developer key without the Names
and Role Provisioning scope; Moodle: the tool's service switched off after its launches named
the roster address): the token endpoint answers 400 invalid_scope to every roster request."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import request

from lti_app.db import Database
from lti_app.demo.seed import TEACHER
from lti_app.demo.server import RunningPlatform
from lti_app.roster import jobs
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_NRPS, SCOPE_SCORE
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, frame
from tests.roster.conftest import RosterCourse


@contextmanager
def roster_token_requests(lms: RunningPlatform) -> Iterator[list[str]]:
    """The token requests that asked for the roster scope, as the LMS received them."""
    original = lms.app.view_functions["oauth.token"]
    asked: list[str] = []

    def token() -> Any:
        if SCOPE_NRPS in request.form.get("scope", "").split():
            asked.append(request.form["scope"])
        return original()

    lms.app.view_functions["oauth.token"] = token
    try:
        yield asked
    finally:
        lms.app.view_functions["oauth.token"] = original


def _launch_and_wait(lti: LtiActions, tool_server: ToolServer, course: RosterCourse) -> Frame:
    """A teacher opens Pathways; returns once the sync her launch started (if any) is over."""
    teacher = frame(lti.launch(TEACHER.user_id, context_id=course.lms_context_id), tool_server.url)
    deadline = time.monotonic() + 20
    while course.context_id in jobs._running:
        assert time.monotonic() < deadline, "the launch's roster sync never finished"
        time.sleep(0.02)
    return teacher


def _alert(page: str) -> str:
    start = page.index('role="alert"')
    return " ".join(html.unescape(page[start : page.index("</div>", start)]).split())


def test_a_key_without_the_roster_scope_is_not_asked_at_every_launch_and_says_what_to_enable(
    make_roster_course: Callable[..., RosterCourse],
    db: Database,
    lti: LtiActions,
    lms: RunningPlatform,
    tool_server: ToolServer,
) -> None:
    """Three teachers' launches in a row (a department opening the course at 8 a.m.) asked the
    LMS's token endpoint three times for a scope its admin had not allowed, and every later
    launch asked again; the page did not name the setting to change. Once the admin allows it,
    "Refresh roster" fetches the class at once."""
    course = make_roster_course(2)
    lms.platform.granted_scopes = frozenset({SCOPE_LINEITEM, SCOPE_SCORE})
    lms.platform.revoke_tokens()  # its tokens from before the change answer 401
    with roster_token_requests(lms) as asked:
        for _ in range(3):
            teacher = _launch_and_wait(lti, tool_server, course)
        assert len(asked) == 1

        alert = _alert(teacher.get("/roster/").text)
        assert "The last roster update failed." in alert
        assert "has not allowed Pathways to read this course's class list" in alert
        assert SCOPE_NRPS in alert  # the scope an admin enables on a Canvas developer key
        assert "IMS LTI Names and Role Provisioning" in alert  # the Moodle tool's service
        assert "sending grades does not need it" in alert
        assert "“Refresh roster” asks at once" in alert

        lms.platform.granted_scopes = lms.platform.config.granted_scopes  # the admin allows it
        refreshed = teacher.follow(teacher.post("/roster/refresh"))
        assert "Roster updated from the LMS: 2 students." in refreshed.text
        assert 'role="alert"' not in refreshed.text
        assert len(asked) == 2
