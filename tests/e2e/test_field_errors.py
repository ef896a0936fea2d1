"""A refused form on the teacher's student page, by keyboard in the LMS's frame (real Chromium):
the refusal takes focus, Tab reaches its "Go to the field" link, and Enter on it puts focus in
the field, which says it is invalid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import PEOPLE, STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Platform
from tests.e2e.conftest import Demo, tool_frame

COURSE = Course(
    context_id="course-e2e-field-errors",
    label="FIELDS",
    title="Refused fields in the frame",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        Enrollment(STUDENTS[0].user_id, Role.LEARNER),
    ),
)
STUDENT_NAME = PEOPLE[STUDENTS[0].user_id].name
SCREEN = (1100, 600)


@pytest.fixture(scope="module")
def course(demo: Demo, database_url: str) -> Iterator[Demo]:
    """A course of its own in the demo LMS: its teacher and one student, on the roster."""
    platform = demo.lms.platform
    link_id = lms_seed.default_resource_link_id(COURSE)
    lms_seed.COURSES[COURSE.context_id] = COURSE
    platform.state.resource_links[link_id] = ResourceLink(link_id, COURSE.context_id, "Pathways")
    db = Database(database_url)
    with db.begin() as s:
        platform_id = s.scalars(select(Platform.id).where(Platform.issuer == demo.lms.base_url))
        context = Context(
            platform_id=platform_id.one(), context_id=COURSE.context_id, title=COURSE.title
        )
        s.add(context)
        s.flush()
        members = [
            Member(
                user_id=e.user_id,
                roles=(str(e.role),),
                status="Active",
                name=PEOPLE[e.user_id].name or None,
                given_name=None,
                family_name=None,
                email=None,
                picture=None,
            )
            for e in COURSE.enrollments
        ]
        apply_members(s, platform_id=context.platform_id, context_id=context.id, members=members)
    db.dispose()
    try:
        yield demo
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(COURSE.context_id, None)


def _follow(page: Any, frame: Any, locator: Any) -> Any:
    with frame.expect_navigation():
        locator.click()
    return tool_frame(page)


def _active(frame: Any) -> dict[str, Any]:
    return dict(
        frame.evaluate(
            "() => { const a = document.activeElement; return {id: a.id, tag: a.tagName,"
            " text: a.textContent.trim(), href: a.getAttribute('href') || '',"
            " invalid: a.getAttribute('aria-invalid') || ''}; }"
        )
    )


def test_go_to_the_field_by_keyboard_focuses_the_refused_field(
    course: Demo, page_factory: Any
) -> None:
    page = page_factory(*SCREEN)
    page.set_default_timeout(15_000)
    page.goto(course.course_url(COURSE.context_id, **{"as": TEACHER.user_id}))
    frame = tool_frame(page)
    nav = frame.get_by_role("navigation", name="Pathways")
    frame = _follow(page, frame, nav.get_by_role("link", name="Overview", exact=True))
    frame = _follow(page, frame, frame.get_by_role("link", name=STUDENT_NAME, exact=True))
    # Spaces pass the browser's "required" but are no goal: the page refuses them.
    frame.fill("#goal-new-text", "   ")
    frame = _follow(page, frame, frame.get_by_role("button", name="Add goal"))
    page.wait_for_timeout(1200)  # frame.js places the page once the LMS has sized the frame
    assert "cannot be empty" in frame.inner_text("#error-summary")
    assert _active(frame)["id"] == "error-summary"
    page.keyboard.press("Tab")
    link = _active(frame)
    assert (link["tag"], link["text"], link["href"]) == ("A", "Go to the field", "#goal-new-text")
    page.keyboard.press("Enter")
    field = _active(frame)
    assert (field["id"], field["invalid"]) == ("goal-new-text", "true")
    # Typing goes into the goal's words.
    page.keyboard.type("Read two books")
    assert frame.input_value("#goal-new-text").strip() == "Read two books"
