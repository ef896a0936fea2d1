"""An LMS on the school's own domain beside Pathways (moodle.school.edu and
pathways.school.edu): the browser counts the two as one site, so a request the LMS's page
makes to Pathways is `Sec-Fetch-Site: same-site`, not `cross-site`. Here both answer on
localhost (one site whatever the port), in headless Chromium.

Everything Pathways itself does with a launch token works there (its links, forms, fetches,
downloads, Back, platform storage, a window of its own and the deep-linking answer it hands
back), and a Pathways link copied into one of the LMS's pages opens nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lti_app.demo.seed import TEACHER
from tests.e2e.conftest import Demo, _start_demo, tool_frame


@pytest.fixture(scope="module")
def same_site(
    database_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    demo = _start_demo(
        database_url,
        tmp_path_factory.mktemp("same-site"),
        secure_cookies=True,
        tool_host="localhost",
    )
    yield from demo


@pytest.fixture(scope="module")
def same_site_like_safari(
    database_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """As `same_site`, but no cookie reaches Pathways in the LMS's frame (Safari before 26.2)."""
    demo = _start_demo(
        database_url,
        tmp_path_factory.mktemp("same-site-safari"),
        secure_cookies=True,
        frames_keep_cookies=False,
        tool_host="localhost",
    )
    yield from demo


class TokenRequests:
    """The requests to Pathways a page makes that carry a launch token."""

    def __init__(self, page: Any, tool_url: str) -> None:
        self.requests: list[Any] = []
        self.tool_url = tool_url
        page.on("request", self._watch)

    def _watch(self, request: Any) -> None:
        if request.url.startswith(self.tool_url) and (
            "lt=" in request.url or "x-launch-token" in request.headers
        ):
            self.requests.append(request)

    def sites(self) -> list[tuple[str, str]]:
        """(Sec-Fetch-Site, URL) of each, as the browser sent them."""
        return [(r.all_headers().get("sec-fetch-site", ""), r.url) for r in self.requests]


@pytest.mark.parametrize("storage", [None, "1"], ids=["cookie", "platform-storage"])
def test_everything_pathways_does_in_the_frame_works_on_the_same_site(
    same_site: Demo, page_factory: Any, storage: str | None
) -> None:
    page = page_factory()
    sent = TokenRequests(page, same_site.tool_url)
    params = {"as": TEACHER.user_id, **({"storage": storage} if storage else {})}
    page.goto(same_site.course_url(**params))
    frames = page.frame_locator("iframe#tool-frame")
    tool_frame(page).click("nav >> text=Students")
    frames.locator("nav [aria-current=page]", has_text="Students").wait_for()
    frames.locator("main button", has_text="Refresh roster").click()  # a form
    frames.locator("main .flash").first.wait_for()
    renewed = tool_frame(page).evaluate("fetch('/lti/session/token').then(r => r.status)")
    assert renewed == 200  # frame.js's own fetch, with the token in its header
    tool_frame(page).click("nav >> text=Dashboard")
    frames.locator("nav [aria-current=page]", has_text="Dashboard").wait_for()
    with page.expect_download() as download:
        tool_frame(page).click("text=Download the evidence log (CSV)")
    assert download.value.suggested_filename.endswith(".csv")
    page.evaluate("history.back()")
    frames.locator("nav [aria-current=page]", has_text="Students").wait_for()
    sites = sent.sites()
    assert sites, "no request carried a launch token"
    assert {site for site, _url in sites} == {"same-origin"}, sites


def test_a_window_of_its_own_and_its_deep_linking_answer_work_on_the_same_site(
    same_site_like_safari: Demo, page_factory: Any
) -> None:
    """Safari keeps no cookie in the frame: Pathways opens in a window of its own, whose
    pages' links carry the token, and hands its deep-linking answer back to the frame."""
    demo = same_site_like_safari
    page = page_factory()
    page.goto(demo.course_url())
    teacher_row = page.get_by_role("row").filter(has_text="Amara Okafor")
    teacher_row.get_by_role("link", name="Add Pathways via Deep Linking").click()
    in_frame = page.frame_locator("iframe#tool-frame")
    with page.expect_popup() as opened:
        in_frame.locator("a", has_text="Open Pathways in a new window").click()
    window = opened.value
    sent = TokenRequests(window, demo.tool_url)
    window.get_by_role("heading", level=1, name="Add Pathways to your course").wait_for(
        timeout=15_000
    )
    window.get_by_role("button", name="Add to course").click()
    in_frame.get_by_role("heading", level=1, name="item(s) added by Pathways").wait_for(
        timeout=15_000
    )
    page.wait_for_timeout(2500)  # past the window's own fallback: it did not post it too
    assert len(demo.lms.platform.state.deep_link_returns) == 1
    sites = sent.sites()
    assert {site for site, _url in sites} <= {"same-origin"}, sites

    # A launch in a window of its own, and a page of Pathways opened from there.
    student = page_factory()
    student.goto(demo.course_url(**{"as": "user-s08"}))
    offer = student.frame_locator("iframe#tool-frame").locator(
        "a", has_text="Open Pathways in a new window"
    )
    with student.expect_popup() as opened:
        offer.click()
    window = opened.value
    sent = TokenRequests(window, demo.tool_url)
    window.locator(".role-badge", has_text="Student").wait_for(timeout=15_000)
    window.click("nav >> text=My progress")
    window.locator("nav [aria-current=page]", has_text="My progress").wait_for()
    sites = sent.sites()
    assert sites, "no request carried a launch token"
    assert {site for site, _url in sites} == {"same-origin"}, sites


def test_a_pathways_link_posted_in_the_lms_opens_nothing(
    same_site: Demo, page_factory: Any
) -> None:
    """The teacher copies the address of a Pathways page out of the frame (it carries the
    launch token) into a post in the LMS; a student clicks it there. The LMS is the same site
    as Pathways, so the browser says `same-site`: it must open nothing, and say what to do."""
    teacher = page_factory()
    teacher.goto(same_site.course_url(**{"as": TEACHER.user_id}))
    copied = tool_frame(teacher).url
    assert "lt=" in copied
    for who, page in (("the teacher", teacher), ("a student", page_factory())):
        if who == "a student":
            page.goto(same_site.course_url(**{"as": "user-s02"}))
            tool_frame(page)
        sent = TokenRequests(page, same_site.tool_url)
        page.evaluate(
            """url => {
              const post = document.createElement('a');
              post.href = url; post.id = 'posted-link'; post.textContent = 'See the class';
              document.body.prepend(post);
            }""",
            copied,
        )
        page.click("#posted-link")
        page.wait_for_url(copied)
        text = page.inner_text("body")
        assert sent.sites() == [("same-site", copied)], who
        assert "does not open from a copied link" in text, (who, text[:500])
        assert "Open Pathways from your course in the LMS" in text, who
        assert "Teacher" not in text, who
