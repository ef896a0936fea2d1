"""The browser's Back and reload in the LMS's frame after a form was sent: each brings back a
Pathways page, never Chromium's "Confirm form resubmission" error or a second save."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.tool.models import Context, Platform
from tests.e2e.conftest import Demo, tool_frame

COURSE = Course(
    context_id="course-e2e-history",
    label="HIST",
    title="History in the frame",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:3]),
    ),
)


@pytest.fixture(scope="module")
def course(demo: Demo, database_url: str) -> Iterator[Demo]:
    """A course of its own in the demo LMS, with two competencies (the gradebook's columns)."""
    platform = demo.lms.platform
    link_id = lms_seed.default_resource_link_id(COURSE)
    lms_seed.COURSES[COURSE.context_id] = COURSE
    platform.state.resource_links[link_id] = ResourceLink(link_id, COURSE.context_id, "Pathways")
    db = Database(database_url)
    with db.begin() as session:
        issuer = demo.lms.base_url
        platform_id = session.scalars(select(Platform.id).where(Platform.issuer == issuer)).one()
        context = Context(
            platform_id=platform_id,
            context_id=COURSE.context_id,
            title=COURSE.title,
            label=COURSE.label,
        )
        session.add(context)
        session.flush()
        for code, title in (("H.1", "Reading sources"), ("H.2", "Writing history")):
            create_competency(session, context_id=context.id, code=code, title=title)
    db.dispose()
    try:
        yield demo
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(COURSE.context_id, None)


@pytest.mark.parametrize(
    ("nav", "button", "page_after"),
    [
        ("Gradebook", "Save columns", "Gradebook"),
        ("Gradebook", "Save and send again", "Gradebook"),
        ("Students", "Refresh roster", "Students"),
        # The report of what the save changed answers the POST; Back and reload open the scale.
        ("Mastery scale", "Save and recompute", "Mastery scale"),
    ],
)
def test_back_and_reload_after_a_form_send_nothing_again(
    course: Demo, page_factory: Any, nav: str, button: str, page_after: str
) -> None:
    page = page_factory()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(course.course_url(COURSE.context_id, **{"as": TEACHER.user_id}))
    tool_frame(page).click(f"nav >> text={nav}")
    frames = page.frame_locator("iframe#tool-frame")
    frames.locator("nav [aria-current=page]", has_text=nav).wait_for()
    sent = len(posts)
    frames.locator("main button", has_text=button).first.click()
    frames.locator("main .flash").first.wait_for()
    assert len(posts) == sent + 1
    tool_frame(page).evaluate("location.reload()")
    frames.locator("main h1", has_text=page_after).wait_for()
    assert len(posts) == sent + 1, posts[sent:]  # the reload sent nothing again
    tool_frame(page).click("nav >> text=Overview")
    frames.locator("nav [aria-current=page]", has_text="Overview").wait_for()
    page.evaluate("history.back()")  # the LMS page's Back: the frame's history goes first
    frames.locator("main h1", has_text=page_after).wait_for()  # not Chromium's error page
    assert len(posts) == sent + 1, posts[sent:]
