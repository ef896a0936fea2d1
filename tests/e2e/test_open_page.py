"""A page left open in the LMS frame for longer than its launch token lasts (frame.js)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.tool.models import Context, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, tool_frame, wait_until

TALL = Course(
    context_id="course-e2e-open-page",
    label="OPEN",
    title="Ten competencies",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:1]),
    ),
)


@pytest.fixture(scope="module")
def tall_course(demo: Demo, database_url: str) -> Iterator[Demo]:
    """A course of its own whose My progress is far taller than the window."""
    platform = demo.lms.platform
    link_id = lms_seed.default_resource_link_id(TALL)
    lms_seed.COURSES[TALL.context_id] = TALL
    platform.state.resource_links[link_id] = ResourceLink(link_id, TALL.context_id, "Pathways")
    db = Database(database_url)
    with db.begin() as session:
        platform_id = session.scalars(select(Platform.id).where(registration_of(demo.lms))).one()
        context = Context(
            platform_id=platform_id, context_id=TALL.context_id, title=TALL.title, label=TALL.label
        )
        session.add(context)
        session.flush()
        for i in range(10):
            create_competency(session, context_id=context.id, code=f"O.{i}", title=f"Skill {i}")
    db.dispose()
    try:
        yield demo
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(TALL.context_id, None)


def _open_reflection(demo: Demo, page: Any, user: str) -> Any:
    page.clock.install()  # real time flows; fast_forward() jumps the page's timers ahead
    page.goto(demo.course_url(**{"as": user}))
    tool_frame(page).click("nav >> text=My reflection")
    page.frame_locator("iframe#tool-frame").locator("textarea[name=reflection]").wait_for()
    frame = tool_frame(page)
    # frame.js sets its renewal timer once it runs: a fast_forward() before that (a loaded
    # machine) jumps past nothing, and the renewal never comes.
    wait_until(frame, "document.readyState === 'complete'")
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
    wait_until(frame, "old => document.body.dataset.launchToken !== old", old)

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


def _in_sight(page: Any, box: dict[str, float] | None) -> bool:
    """Whether a box (in the top-level page's viewport coordinates) is at least partly seen."""
    assert box is not None
    return box["y"] + box["height"] > 0 and box["y"] < page.viewport_size["height"]


def test_the_session_ended_warning_is_seen_where_the_student_is_typing(
    tall_course: Demo, page_factory: Any
) -> None:
    """My progress is far taller than the window: the warning at the page's top was some
    1,750 px above the self-assessment being written, out of sight."""
    page = page_factory(1100, 700)
    page.clock.install()
    page.goto(tall_course.course_url(TALL.context_id, **{"as": STUDENTS[0].user_id}))
    tool_frame(page).click("nav >> text=My progress")
    frames = page.frame_locator("iframe#tool-frame")
    frames.locator("nav [aria-current=page]", has_text="My progress").wait_for()
    wait_until(tool_frame(page), "document.readyState === 'complete'")
    last = frames.locator("details.self-assess").last
    last.locator("summary").click()
    note = last.locator("textarea")
    note.fill("I can now explain it to my friend")
    assert page.evaluate("window.scrollY") > 700  # the page's top is out of sight
    page.route("**/lti/session/token", lambda route: route.fulfill(status=401, body=""))
    page.clock.fast_forward("10:30")
    alert = frames.locator("#session-ended[role=alert]")
    alert.wait_for()
    # frame.js brings the warning into sight after inserting it; a loaded machine's frame
    # may take a moment longer than a person notices.
    for _ in range(50):
        if _in_sight(page, alert.bounding_box()) and _in_sight(page, note.bounding_box()):
            break
        page.wait_for_timeout(100)
    assert _in_sight(page, alert.bounding_box()), "the warning is out of sight"
    assert _in_sight(page, note.bounding_box())
    assert note.evaluate("el => el === document.activeElement")  # still where they typed
    assert note.input_value() == "I can now explain it to my friend"


def test_the_session_ended_warning_beside_a_checkbox_is_not_part_of_its_label(
    tall_course: Demo, page_factory: Any
) -> None:
    """A checkbox sits inside its <label>: the warning put before the box went into the label,
    so clicking the warning ticked the box and a screen reader read it as the box's name."""
    page = page_factory(700, 600)
    page.clock.install()
    page.goto(tall_course.course_url(TALL.context_id, **{"as": TEACHER.user_id}))
    tool_frame(page).click("nav >> text=Competencies")
    frames = page.frame_locator("iframe#tool-frame")
    frames.locator("nav [aria-current=page]", has_text="Competencies").wait_for()
    wait_until(tool_frame(page), "document.readyState === 'complete'")
    box = frames.get_by_role("checkbox", name="O.9 · Skill 9")
    box.focus()
    page.route("**/lti/session/token", lambda route: route.fulfill(status=401, body=""))
    page.clock.fast_forward("10:30")
    alert = frames.locator("#session-ended[role=alert]")
    alert.wait_for()
    page.wait_for_timeout(300)
    alert.click()
    assert not box.is_checked(), "clicking the warning ticked the prerequisite"
    assert box.evaluate("el => el.labels[0].textContent.trim()") == "O.9 · Skill 9"
    assert _in_sight(page, alert.bounding_box()), "the warning is out of sight"
    assert _in_sight(page, box.bounding_box())
