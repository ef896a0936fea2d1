"""A teacher and a student launch Pathways inside the LMS's frame in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from lti_app.db import Database
from lti_app.tool.cache import clear_all
from lti_app.tool.models import Platform
from tests.conftest import registration_of
from tests.e2e.conftest import (
    SCREENSHOTS,
    Demo,
    screenshot,
    serious_axe_violations,
    tool_frame,
    wait_until,
)


@pytest.mark.parametrize(("user", "role"), [("user-t01", "Teacher"), ("user-s02", "Student")])
def test_launch_in_the_lms_frame_from_another_site(
    demo: Demo, page_factory: Any, user: str, role: str
) -> None:
    page = page_factory()
    page.goto(demo.course_url(**{"as": user}))
    frame = tool_frame(page)
    assert demo.tool_url in frame.url
    assert frame.inner_text(".role-badge") == role
    assert serious_axe_violations(frame) == []


@pytest.mark.parametrize("width", [700, 390])
def test_homes_fit_a_narrow_frame(demo: Demo, page_factory: Any, width: int) -> None:
    for user in ("user-t01", "user-s06"):
        page = page_factory(width=width)
        # The tool's own page at the frame's width: nothing may need horizontal scrolling.
        page.goto(demo.course_url(**{"as": user}))
        frame = tool_frame(page)
        page.set_viewport_size({"width": width, "height": 900})
        scroll_width = frame.evaluate("document.documentElement.scrollWidth")
        client_width = frame.evaluate("document.documentElement.clientWidth")
        assert scroll_width <= client_width + 1
        screenshot(page, f"home-{user}-{width}")


def test_platform_storage_carries_the_login_when_cookies_are_blocked(
    demo_without_cookies: Demo, page_factory: Any
) -> None:
    demo = demo_without_cookies
    page = page_factory()
    launch_posts: list[bool] = []

    def watch(request: Any) -> None:
        if request.url.endswith("/lti/launch") and request.method == "POST":
            launch_posts.append("cookie" in request.headers)

    page.on("request", watch)
    page.goto(demo.course_url(storage="1", **{"as": "user-s03"}))
    frame = tool_frame(page)
    assert frame.inner_text(".role-badge") == "Student"
    # The first POST came without a cookie; the second carried the secret from the platform.
    assert launch_posts == [False, False]
    assert _storage_left_behind(page) == []


def _storage_left_behind(page: Any) -> list[str]:
    """Keys the tool put in the demo LMS's platform storage and did not take away again.

    Canvas keeps platform storage in the browser's localStorage, so a key left there stays
    for good; the demo LMS logs every lti.put_data (origin, key, stored?).
    """
    page.wait_for_function(
        "() => { const s = window.demoPlatformStorage;"
        " return s.puts.some(p => p[2]) && s.puts.some(p => !p[2]); }",
        timeout=10_000,
    )
    stored: dict[str, Any] = page.evaluate("window.demoPlatformStorage")
    return [key for keys in stored["stores"].values() for key in keys]


@pytest.fixture
def auth_url_in_capitals(demo_without_cookies: Demo, database_url: str) -> Iterator[Demo]:
    """The demo LMS's OIDC auth URL registered as an admin might type it: LOCALHOST."""
    demo = demo_without_cookies
    url = demo.lms.platform.url("/auth")
    db = Database(database_url)

    def register(auth_url: str) -> None:
        with db.begin() as session:
            session.execute(
                update(Platform).where(registration_of(demo.lms)).values(auth_login_url=auth_url)
            )
        clear_all()  # the registration Pathways remembers

    register(url.replace("//localhost", "//LOCALHOST"))
    try:
        yield demo
    finally:
        register(url)
        db.dispose()


def test_platform_storage_works_whatever_the_case_of_the_registered_auth_url(
    auth_url_in_capitals: Demo, page_factory: Any
) -> None:
    """Host names do not depend on case (RFC 3986), and the browser writes the origin the
    platform answers from in lower case: Pathways compared it with the URL as typed, ignored
    every answer, and no launch by platform storage ever worked."""
    page = page_factory()
    page.goto(auth_url_in_capitals.course_url(storage="1", **{"as": "user-s03"}))
    assert tool_frame(page).inner_text(".role-badge") == "Student"
    assert _storage_left_behind(page) == []


def test_a_launch_the_cookie_carried_takes_its_key_out_of_platform_storage(
    demo: Demo, page_factory: Any
) -> None:
    page = page_factory()
    page.goto(demo.course_url(storage="1", **{"as": "user-s04"}))
    frame = tool_frame(page)
    assert frame.inner_text(".role-badge") == "Student"
    assert _storage_left_behind(page) == []


def test_platform_storage_that_kept_nothing_says_what_to_do_and_stops(
    demo_without_cookies: Demo, page_factory: Any
) -> None:
    page = page_factory()
    launch_posts: list[str] = []
    page.on(
        "request",
        lambda r: launch_posts.append(r.url) if r.url.endswith("/lti/launch") else None,
    )
    page.goto(demo_without_cookies.course_url(storage="forgetful", **{"as": "user-s03"}))
    frame = tool_frame(page)
    failed = frame.locator("#lti-storage-failed")
    failed.wait_for(state="visible", timeout=10_000)
    assert "new window" in failed.inner_text()
    page.wait_for_timeout(1000)  # an empty answer posted back would bring the page again
    assert len(launch_posts) == 1


def test_without_cookies_or_platform_storage_the_page_says_what_to_do(
    demo_without_cookies: Demo, page_factory: Any
) -> None:
    issued = demo_without_cookies.lms.platform.counters.id_tokens_issued
    page = page_factory()
    page.goto(demo_without_cookies.course_url(**{"as": "user-s03"}))
    frame = tool_frame(page)
    assert "blocks cookies from other sites" in frame.inner_text("main")
    assert "Open Pathways in a new window" in frame.inner_text("main a.button")
    # Found out before the LMS was asked: its one-time launch is still good for the window.
    assert demo_without_cookies.lms.platform.counters.id_tokens_issued == issued


@pytest.mark.parametrize(
    "storage",
    [None, "mute"],
    ids=["no-platform-storage", "platform-storage-never-answers"],
)
def test_without_cookies_in_the_frame_pathways_opens_in_a_window_of_its_own(
    demo_like_safari: Demo, page_factory: Any, storage: str | None
) -> None:
    """Safari on a platform without LTI Platform Storage (Moodle), or one that offers it but
    never answers (Canvas's mobile apps): the frame's login found its cookie gone and offers
    a window before the LMS spends its one-time authorization; there the student lands on
    their home."""
    demo = demo_like_safari
    page = page_factory(width=700)
    page.goto(demo.course_url(**{"as": "user-s08"}, **({"storage": storage} if storage else {})))
    offer = page.frame_locator("iframe#tool-frame").locator(
        "a", has_text="Open Pathways in a new window"
    )
    offer.wait_for()
    assert serious_axe_violations(tool_frame(page)) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("iframe#tool-frame").screenshot(path=str(SCREENSHOTS / "open-in-a-window.png"))
    with page.expect_popup() as opened:
        offer.click()
    window = opened.value
    window.locator(".role-badge", has_text="Student").wait_for(timeout=15_000)
    assert window.url.startswith(demo.tool_url)
    assert "Pathways could not start" not in window.inner_text("body")


def test_frame_is_resized_to_the_page(demo: Demo, page_factory: Any) -> None:
    page = page_factory()
    page.goto(demo.course_url(**{"as": "user-t01"}))
    tool_frame(page)
    page.wait_for_function(
        "document.getElementById('tool-frame').style.height !== ''", timeout=5000
    )


@pytest.mark.parametrize(("user", "link"), [("user-t01", "Dashboard"), ("user-s02", "My progress")])
def test_the_browsers_back_button_returns_to_the_launch_page(
    demo: Demo, page_factory: Any, user: str, link: str
) -> None:
    """The first page is the answer to the LMS's form POST: Back from the next page showed
    Chromium's "Confirm form resubmission" error (ERR_CACHE_MISS) in the frame."""
    page = page_factory()
    page.goto(demo.course_url(**{"as": user}))
    heading = tool_frame(page).inner_text("main h1")
    tool_frame(page).click(f"nav >> text={link}")
    frames = page.frame_locator("iframe#tool-frame")
    frames.locator("nav [aria-current=page]", has_text=link).wait_for()
    page.evaluate("history.back()")  # the LMS page's Back: the frame's history goes first
    frames.locator("main h1", has_text=heading).wait_for()  # not Chromium's error page
    assert "/home?" in tool_frame(page).url
    page.evaluate("history.forward()")
    frames.locator("nav [aria-current=page]", has_text=link).wait_for()


def test_reloading_the_frame_shows_the_launch_page_again(demo: Demo, page_factory: Any) -> None:
    """Reloading the first page re-sent the LMS's form: its id_token, used up, was refused
    ("already used"), and the teacher was asked to open Pathways again."""
    page = page_factory()
    page.goto(demo.course_url(**{"as": "user-t01"}))
    frame = tool_frame(page)
    heading = frame.inner_text("main h1")
    # frame.js puts the page's own address in the history once it runs: a reload before that
    # (no person is that quick; a loaded machine's test is) re-sends the LMS's form.
    wait_until(frame, "location.pathname !== '/lti/launch'")
    frame.evaluate("location.reload()")
    frames = page.frame_locator("iframe#tool-frame")
    frames.locator("main h1", has_text=heading).wait_for()
    assert "/home?" in tool_frame(page).url


def test_back_through_a_launch_by_platform_storage_meets_no_resubmission_error(
    demo_without_cookies: Demo, page_factory: Any
) -> None:
    """Without third-party cookies (Safari) the launch passes two more pages through the frame
    (the login's put_data page, the launch's get_data page, itself the answer to the LMS's
    form): the second Back from Pathways showed Chromium's resubmission error."""
    page = page_factory()
    page.goto(demo_without_cookies.course_url(storage="1", **{"as": "user-s09"}))
    tool_frame(page).click("nav >> text=My progress")
    frames = page.frame_locator("iframe#tool-frame")
    frames.locator("nav [aria-current=page]", has_text="My progress").wait_for()
    page.evaluate("history.back()")
    frames.locator("main h1", has_text="My pathways").wait_for()
    page.evaluate("history.back()")
    frames.locator("main h1", has_text="Pathways started here").wait_for()
    assert page.url.startswith(demo_without_cookies.lms.base_url)  # still the course page
    page.evaluate("history.forward()")
    frames.locator("main h1", has_text="My pathways").wait_for()


def test_deep_linking_from_a_window_of_its_own_answers_in_the_lms_frame(
    demo_like_safari: Demo, page_factory: Any
) -> None:
    """Moodle takes a deep-linking answer only in the frame that asked for it (its
    contentitem_return.js calls its parent): the window hands the answer back to the frame."""
    demo = demo_like_safari
    page = page_factory()
    page.goto(demo.course_url())
    teacher_row = page.get_by_role("row").filter(has_text="Amara Okafor")
    teacher_row.get_by_role("link", name="Add Pathways via Deep Linking").click()
    in_frame = page.frame_locator("iframe#tool-frame")
    offer = in_frame.locator("a", has_text="Open Pathways in a new window")
    with page.expect_popup() as opened:
        offer.click()
    window = opened.value
    window.get_by_role("heading", level=1, name="Add Pathways to your course").wait_for(
        timeout=15_000
    )
    window.get_by_role("button", name="Add to course").click()
    in_frame.get_by_role("heading", level=1, name="item(s) added by Pathways").wait_for(
        timeout=15_000
    )
    # Past the window's own fallback (1.5 s): it handed the answer over and did not post it too.
    page.wait_for_timeout(2500)
    assert len(demo.lms.platform.state.deep_link_returns) == 1
    if not window.is_closed():  # Chromium may refuse window.close(): then it says what to do
        assert window.locator("#handed-to-the-course").is_visible()
