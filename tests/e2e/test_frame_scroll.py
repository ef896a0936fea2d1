"""Where a new page in the LMS's frame opens (frame.js). The demo LMS, like Canvas, sizes its
frame to the whole page, so it is the LMS's page that scrolls; a page opened from low on a long
page must bring its top, the step its address names, or its error into the LMS's screen."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.conftest import Demo, tool_frame
from tests.e2e.test_pages import seed

SCREEN = (1100, 900)
"""The LMS's window: its frame beside the people list, 700 px or more wide."""

FRAME_TOP = "() => document.getElementById('tool-frame').getBoundingClientRect().top"


@pytest.fixture(scope="module")
def seeded(demo: Demo, database_url: str) -> Demo:
    seed(demo, database_url)
    return demo


def _launch(demo: Demo, page_factory: Any, user: str) -> tuple[Any, Any]:
    page = page_factory(*SCREEN)
    page.set_default_timeout(10_000)
    page.goto(demo.course_url(**{"as": user}))
    return page, tool_frame(page)


def _top_on_screen(page: Any, frame: Any, selector: str) -> float:
    return float(
        page.evaluate(FRAME_TOP)
        + frame.eval_on_selector(selector, "e => e.getBoundingClientRect().top")
    )


def _settled_top(page: Any, frame: Any, selector: str) -> float:
    """Where `selector`'s top is on the LMS's screen, once it is on it (or after 3 s) and the
    frame's resize has had time to move it again."""
    deadline = time.monotonic() + 3
    while not 0 <= _top_on_screen(page, frame, selector) < SCREEN[1]:
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)
    return _top_on_screen(page, frame, selector)


def _in_sight(top: float) -> bool:
    return 0 <= top < SCREEN[1] - 100


def test_a_student_opened_from_low_on_the_overview_opens_at_the_top(
    seeded: Demo, page_factory: Any
) -> None:
    page, frame = _launch(seeded, page_factory, "user-t01")
    link = frame.get_by_role("link", name="Oscar Johansson").first
    link.scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 300  # the LMS's page scrolled down to the link
    with frame.expect_navigation():
        link.click()
    frame = tool_frame(page)
    top = _settled_top(page, frame, "main h1")
    assert _in_sight(top), f"the student's name is at {top:.0f} px on a {SCREEN[1]} px screen"

    # A page whose top is already in sight stays where it is: no jump.
    page.evaluate(
        "y => window.scrollTo(0, y)",
        page.evaluate(FRAME_TOP) + page.evaluate("window.scrollY") - 60,
    )
    scrolled = page.evaluate("window.scrollY")
    with frame.expect_navigation():
        frame.get_by_role("navigation", name="Pathways").get_by_role(
            "link", name="Competencies"
        ).click()
    tool_frame(page)
    page.wait_for_timeout(1200)  # frame.js waits at most a second for the LMS's resize
    assert page.evaluate("window.scrollY") == scrolled


def test_a_next_step_link_opens_the_pathway_at_that_step(seeded: Demo, page_factory: Any) -> None:
    page, frame = _launch(seeded, page_factory, "user-s01")
    link = frame.locator(".next-steps a").filter(has_text="Look through the microscope").first
    step = link.get_attribute("href").rsplit("#", 1)[1]
    with frame.expect_navigation():
        link.click()
    frame = tool_frame(page)
    top = _settled_top(page, frame, f"#{step}")
    assert _in_sight(top), f"the step is at {top:.0f} px on a {SCREEN[1]} px screen"
    assert frame.evaluate("document.activeElement.id") == step


def _error_shown_and_tied_to(page: Any, frame: Any, field: str) -> None:
    top = _settled_top(page, frame, "#error-summary")
    assert _in_sight(top), f"the error is at {top:.0f} px on a {SCREEN[1]} px screen"
    assert frame.evaluate("document.activeElement.id") == "error-summary"
    marks = frame.eval_on_selector(
        f"#{field}", "e => [e.getAttribute('aria-invalid'), e.getAttribute('aria-describedby')]"
    )
    assert marks[0] == "true"
    assert "error-summary" in marks[1].split()


def test_a_refused_competency_code_shows_its_error_and_marks_the_code_field(
    seeded: Demo, page_factory: Any
) -> None:
    page, frame = _launch(seeded, page_factory, "user-t01")
    with frame.expect_navigation():
        frame.get_by_role("navigation", name="Pathways").get_by_role(
            "link", name="Competencies"
        ).click()
    frame = tool_frame(page)
    frame.locator("#new-code").scroll_into_view_if_needed()
    frame.fill("#new-code", "CELL.1")
    frame.fill("#new-title", "Cell structure again")
    with frame.expect_navigation():
        frame.get_by_role("button", name="Add competency").click()
    frame = tool_frame(page)
    assert "CELL.1" in frame.inner_text("#error-summary")
    _error_shown_and_tied_to(page, frame, "new-code")


def test_a_refused_hand_in_shows_its_error_and_marks_the_link_field(
    seeded: Demo, page_factory: Any
) -> None:
    page, frame = _launch(seeded, page_factory, "user-s22")
    with frame.expect_navigation():
        frame.get_by_role("link", name="Open Ecosystems pathway").click()
    frame = tool_frame(page)
    option = frame.locator("section.step").first.locator("li.option")
    option = option.filter(has_not_text="approves this choice").first
    with frame.expect_navigation():
        option.get_by_role("button", name=re.compile("^Choose this option")).click()
    frame = tool_frame(page)
    with frame.expect_navigation():
        frame.get_by_role("button", name="Start this work").first.click()
    frame = tool_frame(page)
    url = frame.get_by_label("Link to your work")
    url.scroll_into_view_if_needed()
    url.fill("file:///C:/Users/emma/Documents/food-web.docx")
    field = url.get_attribute("id")
    with frame.expect_navigation():
        frame.get_by_role("button", name="Hand in").click()
    frame = tool_frame(page)
    assert "Links must start with http" in frame.inner_text("#error-summary")
    _error_shown_and_tied_to(page, frame, field)
