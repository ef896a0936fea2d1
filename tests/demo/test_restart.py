"""`lti-app demo` restarted while its course page stays open in the browser: the page's launch
buttons still launch (before, each answered "Unknown lti_message_hint: this launch was not
started here" until the page was reloaded), and a roster sync the stop cut off does not keep
the next one waiting."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from lti_app.demo.browser import follow_launch
from lti_app.demo.launches import CONTEXT, MESSAGE_TYPE, RESOURCE_LINK, MessageType
from lti_app.demo.run import end_syncs_the_demo_was_running, register_demo_platform
from lti_app.demo.seed import BIOLOGY, STUDENTS, TEACHER, default_resource_link_id
from lti_app.demo.server import RunningPlatform, start_demo_platform
from lti_app.roster.jobs import SYNC_LEASE
from lti_app.roster.sync_lease import begin_sync
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import second_lms
from tests.progress.pages import context_id, unit_of_work

from .conftest import FakeTool


class Demo:
    """`lti-app demo` for the fake tool, which can be stopped and started again."""

    def __init__(self, tool: FakeTool) -> None:
        self.tool = tool
        self.running = self._start(0)

    def _start(self, port: int) -> RunningPlatform:
        served = start_demo_platform(self.tool.base_url, port=port)
        self.tool.auth_url = f"{served.base_url}/auth"
        return served

    def restart(self) -> None:
        """Stopped, and started again at the same address (its launches forgotten)."""
        self.running.stop()
        self.running = self._start(urlsplit(self.running.base_url).port or 0)


@pytest.fixture
def demo(tool: FakeTool) -> Iterator[Demo]:
    running = Demo(tool)
    yield running
    running.running.stop()


def _buttons(page: str) -> dict[str, str]:
    """The page's launch URLs by their lti_message_hint."""
    urls = [html.unescape(u) for u in re.findall(r'"(https?://[^"]*/lti/login\?[^"]+)"', page)]
    return {parse_qs(urlsplit(u).query)["lti_message_hint"][0]: u for u in urls}


def _claims(tool: FakeTool) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        tool.launches[-1]["id_token"], options={"verify_signature": False}
    )
    return claims


@pytest.mark.parametrize("storage", [False, True])
def test_the_buttons_of_a_page_shown_before_a_restart_still_launch(
    demo: Demo, tool: FakeTool, storage: bool
) -> None:
    with httpx.Client(timeout=10) as browser:
        course = f"{demo.running.base_url}/courses/{BIOLOGY.context_id}"
        page = browser.get(course, params={"storage": int(storage)}).text
        buttons = _buttons(page)
        student = next(u for h, u in buttons.items() if f"-{STUDENTS[2].user_id}-" in h)
        deep_link = next(u for h, u in buttons.items() if h.startswith("ui-dl-"))
        demo.restart()  # the browser keeps the page: no reload

        assert follow_launch(browser, student).text == "launched"
        claims = _claims(tool)
        assert claims["sub"] == STUDENTS[2].user_id
        assert claims[CONTEXT]["id"] == BIOLOGY.context_id
        assert claims[RESOURCE_LINK]["id"] == default_resource_link_id(BIOLOGY)
        assert ("lti_storage_target" in tool.logins[-1]) is storage

        assert follow_launch(browser, deep_link).text == "launched"
        claims = _claims(tool)
        assert claims["sub"] == TEACHER.user_id
        assert claims[MESSAGE_TYPE] == MessageType.DEEP_LINKING.value


def test_a_hint_no_button_of_the_page_has_is_still_unknown(demo: Demo) -> None:
    with httpx.Client(timeout=10) as browser:
        page = browser.get(f"{demo.running.base_url}/courses/{BIOLOGY.context_id}").text
        student_hint, student = next(
            (h, u) for h, u in _buttons(page).items() if f"-{STUDENTS[0].user_id}-" in h
        )
        demo.restart()
        made_up = {
            "ui-course-none-" + student_hint.removeprefix(f"ui-{BIOLOGY.context_id}-"),
            student_hint.replace(STUDENTS[0].user_id, "user-nobody"),
            student_hint.removesuffix("-c") + "-x",
            "ui-dl-" + student_hint,  # a student has no "add content" button
        }
        for hint in made_up:
            answer = follow_launch(browser, student.replace(student_hint, hint))
            assert answer.status_code == 400, hint
            assert "Unknown lti_message_hint" in answer.text


def test_a_roster_sync_cut_off_by_stopping_the_demo_does_not_hold_up_the_next(
    tool_server: ToolServer, database_url: str
) -> None:
    """The demo stopped in the middle of a roster sync: once started again, a teacher's
    Refresh syncs at once instead of waiting out the dead sync's quarter-hour lease."""
    with second_lms(tool_server, database_url) as running:
        lti = LtiActions(running, tool_server)
        try:
            lti.launch(STUDENTS[0].user_id)  # the course, without a teacher launch's sync
        finally:
            lti.close()
        with unit_of_work(database_url) as session:
            course = context_id(session, running)
            assert begin_sync(session, context_id=course, lease=SYNC_LEASE) is not None
        # ... and the demo stops before the sync ends; then it starts again:
        with unit_of_work(database_url) as session:
            platform = register_demo_platform(session, running.platform)
            end_syncs_the_demo_was_running(session, platform)
        with unit_of_work(database_url) as session:
            assert begin_sync(session, context_id=course, lease=SYNC_LEASE) is not None
