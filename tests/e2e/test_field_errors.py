"""A refused form, by keyboard in the LMS's frame (real Chromium): the refusal takes focus, Tab
reaches its "Go to the field" link, and Enter on it puts focus in the field, which says it is
invalid, with the field's label or legend in sight above it and not under its focus ring."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import PEOPLE, STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.insights.groups import create_group
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, tool_frame

COURSE = Course(
    context_id="course-e2e-field-errors",
    label="FIELDS",
    title="Refused fields in the frame",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        # A class's worth: the group page is taller than the LMS's window, so a jump can
        # bring a field to its very top.
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:24]),
    ),
)
STUDENT_NAME = PEOPLE[STUDENTS[0].user_id].name
SCREEN = (1100, 600)
LMS_WINDOW_HEIGHT = 640


@pytest.fixture(scope="module")
def course(demo: Demo, database_url: str) -> Iterator[Demo]:
    """A course of its own in the demo LMS: its teacher and students, on the roster."""
    platform = demo.lms.platform
    link_id = lms_seed.default_resource_link_id(COURSE)
    lms_seed.COURSES[COURSE.context_id] = COURSE
    platform.state.resource_links[link_id] = ResourceLink(link_id, COURSE.context_id, "Pathways")
    db = Database(database_url)
    with db.begin() as s:
        platform_id = s.scalars(select(Platform.id).where(registration_of(demo.lms)))
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


@pytest.fixture(scope="module")
def group_id(course: Demo, database_url: str) -> int:
    """A group of one of the course's students, saved by its teacher."""
    db = Database(database_url)
    with db.begin() as s:
        context_id = s.scalars(
            select(Context.id).where(Context.context_id == COURSE.context_id)
        ).one()
        people = dict(
            s.execute(
                select(Person.sub, Person.id).where(
                    Person.sub.in_([e.user_id for e in COURSE.enrollments])
                )
            ).all()
        )
        group = create_group(
            s,
            context_id=context_id,
            name="Lab table 1",
            person_ids=[people[STUDENTS[0].user_id]],
            created_by_id=people[TEACHER.user_id],
        )
        s.flush()
        made = group.id
    db.dispose()
    return made


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


FOCUS_RING = (0xFF, 0xBF, 0x47)
"""--focus in pathways.css."""


def _focus_ring_pixels(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=rgb.width * rgb.height) or []
    return sum(
        count
        for count, colour in colours
        if all(abs(a - b) <= 24 for a, b in zip(colour, FOCUS_RING, strict=True))
    )


def _pixels_inside(png: bytes) -> bytes:
    """An element's screenshot but its outermost pixels, which its fractional edges share with
    what is around it."""
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").crop((1, 1, image.width - 1, image.height - 1)).tobytes()


def _in_lms_window(page: Any, frame: Any, selector: str) -> tuple[float, float]:
    """The top and bottom of what `selector` finds, from the top of the LMS's window."""
    frame_top = page.evaluate("document.getElementById('tool-frame').getBoundingClientRect().top")
    top, bottom = frame.eval_on_selector(
        selector, "e => [e.getBoundingClientRect().top, e.getBoundingClientRect().bottom]"
    )
    return frame_top + top, frame_top + bottom


@pytest.mark.parametrize("width", [700, 375])
@pytest.mark.parametrize(
    ("refused", "field", "name"),
    [("name", "#g-name", "label[for=g-name]"), ("members", "#g-members", "#g-members legend")],
)
def test_go_to_the_field_shows_what_the_field_is_called(
    course: Demo, group_id: int, page_factory: Any, width: int, refused: str, field: str, name: str
) -> None:
    page = page_factory(width, LMS_WINDOW_HEIGHT)
    page.set_default_timeout(15_000)
    page.goto(course.course_url(COURSE.context_id, **{"as": TEACHER.user_id}))
    frame = tool_frame(page)
    nav = frame.get_by_role("navigation", name="Pathways")
    frame = _follow(page, frame, nav.get_by_role("link", name="Groups", exact=True))
    frame = _follow(page, frame, frame.get_by_role("link", name="Lab table 1"))
    if refused == "name":
        frame.fill("#g-name", "   ")
    else:
        frame.locator("input[name=member]:checked").uncheck()
    frame.focus("#g-name")
    with frame.expect_navigation():
        page.keyboard.press("Enter")
    frame = tool_frame(page)
    # expect(), not wait_for_function(): the page's CSP refuses the eval() its polling uses.
    expect(frame.locator("#error-summary")).to_be_focused()
    page.keyboard.press("Tab")
    assert _active(frame)["text"] == "Go to the field"
    page.keyboard.press("Enter")
    expect(frame.locator(field)).to_be_focused()
    name_top, _ = _in_lms_window(page, frame, name)
    _, field_bottom = _in_lms_window(page, frame, field if refused == "name" else name)
    assert name_top >= 0, f"{name} is {-name_top:.0f} px above the LMS's window"
    assert field_bottom <= LMS_WINDOW_HEIGHT
    if refused == "members":
        # The fieldset's ring is drawn where its border is, across the middle of the legend:
        # it shows, but the legend reads as it does unfocused.
        assert _focus_ring_pixels(page.screenshot()) > 100
        focused = frame.locator(name).screenshot()
        frame.evaluate("document.activeElement.blur()")
        unfocused = frame.locator(name).screenshot()
        assert _pixels_inside(focused) == _pixels_inside(unfocused), "the ring crosses the legend"
