"""A page left open in the LMS frame for longer than its launch token lasts (frame.js)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from tests.e2e.conftest import Demo, tool_frame


def _open_reflection(demo: Demo, page: Any, user: str) -> Any:
    page.clock.install()  # real time flows; fast_forward() jumps the page's timers ahead
    page.goto(demo.course_url(**{"as": user}))
    tool_frame(page).click("nav >> text=My reflection")
    page.frame_locator("iframe#tool-frame").locator("textarea[name=reflection]").wait_for()
    frame = tool_frame(page)
    # frame.js sets its renewal timer once it runs: a fast_forward() before that (a loaded
    # machine) jumps past nothing, and the renewal never comes.
    frame.wait_for_function("document.readyState === 'complete'")
    return frame


def test_a_page_left_open_swaps_in_a_fresh_token_before_its_own_expires(
    demo: Demo, page_factory: Any
) -> None:
    page = page_factory()
    frame = _open_reflection(demo, page, "user-s07")
    old = frame.get_attribute("body", "data-launch-token")
    page.wait_for_timeout(1100)  # tokens are stamped to the second
    frame.fill("textarea[name=reflection]", "Written over a whole lesson.")

    page.clock.fast_forward("10:30")
    frame.wait_for_function("old => document.body.dataset.launchToken !== old", arg=old)

    fresh = frame.get_attribute("body", "data-launch-token")
    assert old not in frame.content()  # no link or form of the page carries the old one
    assert f"lt={fresh}" in frame.content()
    posted: list[str] = []
    page.on(
        "request",
        lambda r: (
            posted.append(parse_qs(r.post_data or "")["lt"][0])
            if r.method == "POST" and r.url.endswith("/reports/reflection")
            else None
        ),
    )
    frame.click("main form button[type=submit]")
    page.frame_locator("iframe#tool-frame").locator("text=Your reflection is saved.").wait_for()
    assert "Written over a whole lesson." in tool_frame(page).input_value("textarea")
    assert posted == [fresh]


def test_a_page_whose_session_ended_says_so_before_more_is_typed(
    demo: Demo, page_factory: Any
) -> None:
    page = page_factory()
    frame = _open_reflection(demo, page, "user-s08")
    page.route("**/lti/session/token", lambda route: route.fulfill(status=401, body=""))
    page.clock.fast_forward("10:30")
    alert = page.frame_locator("iframe#tool-frame").locator("#session-ended[role=alert]")
    alert.wait_for()
    assert "open Pathways again" in alert.inner_text()
    assert frame.input_value("textarea[name=reflection]") == ""  # nothing typed was touched
