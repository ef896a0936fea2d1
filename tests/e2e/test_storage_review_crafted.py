"""Cookies in the LMS's cross-site frame, in headless Chromium: what the launch leaves behind."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Demo, tool_frame


def _state_cookies(page: Any) -> list[dict[str, Any]]:
    return [c for c in page.context.cookies() if c["name"].startswith("lti1p3_state_")]


def test_a_launch_in_the_frame_takes_its_state_cookie_away_again(
    demo: Demo, page_factory: Any
) -> None:
    page = page_factory()
    page.goto(demo.course_url(**{"as": "user-s05"}))
    assert tool_frame(page).inner_text(".role-badge") == "Student"
    # The login set a Secure; SameSite=None; Partitioned cookie in the LMS's partition; the
    # launch must reach that same cookie to remove it, or every launch leaves one behind
    # (sent with every request to /lti/ until it expires).
    assert _state_cookies(page) == []
