"""An LMS admin registers Pathways through LTI Dynamic Registration, which Canvas and Moodle
open in a frame of their own site, in a browser that keeps no cookie there (Safari)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from markupsafe import escape

from tests.e2e.conftest import Demo
from tests.registration.lms import PlatformDouble, serve


@pytest.fixture
def moodle() -> Iterator[PlatformDouble]:
    lms = PlatformDouble("moodle")
    with serve(lms.app()) as base_url:
        lms.base_url = base_url
        yield lms


def test_an_admin_registers_pathways_in_the_lms_frame_without_cookies(
    demo_like_safari: Demo, moodle: PlatformDouble, page_factory: Any
) -> None:
    register_url = moodle.registration_url(demo_like_safari.tool_url + "/lti/register")
    lms_page = Flask("lms_admin_page")
    lms_page.add_url_rule(
        "/admin/tools",
        view_func=lambda: (
            '<h1>Site administration</h1><iframe id="reg" '
            f'src="{escape(register_url)}" width="700" height="800"></iframe>'
        ),
    )
    with serve(lms_page) as base_url:
        page = page_factory(width=900)
        # Another site than Pathways' 127.0.0.1, as the LMS is.
        page.goto(base_url.replace("127.0.0.1", "localhost") + "/admin/tools")
        frame = page.frame_locator("iframe#reg")
        frame.get_by_role("button", name="Register Pathways").click()
        frame.get_by_role("heading", name="Pathways is registered").wait_for(timeout=15_000)
    assert len(moodle.registration_requests) == 1
