"""Typing in one form of a page and pressing another form's button (real Chromium, in the LMS's
frame): what was typed and not saved in the other forms comes back on the page after the save,
with a note, and never on another person's page; a saved profile is confirmed where focus
lands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import PEOPLE, STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.pathways import choices, services
from lti_app.pathways.options import OptionInput, create_option
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, _start_demo, tool_frame

COURSE = Course(
    context_id="course-e2e-unsaved-forms",
    label="UNSAVED",
    title="Unsaved typing in the frame",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:5]),
    ),
)
PROFILING, HANDING_IN, CUT_OFF, NEXT_AT_THE_DESK, SAVING = (s.user_id for s in STUDENTS[:5])
"""Who adds a goal after typing their profile, who has started work on the first step, two
students who share a computer, and who saves their profile."""
SCREEN = (1100, 800)


@dataclass(frozen=True)
class Room:
    demo: Demo
    second_step_id: int


@pytest.fixture(scope="module")
def room(demo: Demo, database_url: str) -> Iterator[Room]:
    """A course of its own in the demo LMS: a pathway of two open steps, the first with work
    started in it by one student."""
    with _room_in(demo, database_url) as room:
        yield room


@pytest.fixture(scope="module")
def same_site_room(
    database_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Room]:
    """The course in an LMS on Pathways' own site: its frame is no third party, so the
    browser lets it keep sessionStorage (Chromium here refuses a cross-site frame that)."""
    demos = _start_demo(
        database_url, tmp_path_factory.mktemp("unsaved"), secure_cookies=True, tool_host="localhost"
    )
    demo = next(demos)
    with _room_in(demo, database_url) as room:
        yield room
    next(demos, None)


@contextmanager
def _room_in(demo: Demo, database_url: str) -> Iterator[Room]:
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
        cid = context.id
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
        apply_members(s, platform_id=context.platform_id, context_id=cid, members=members)
        handing_in = s.scalars(
            select(Person.id).where(
                Person.platform_id == context.platform_id, Person.sub == HANDING_IN
            )
        ).one()
        pathway = services.create_pathway(s, context_id=cid, title="Ponds")
        steps = [
            services.create_step(s, context_id=cid, pathway_id=pathway.id, title=title)
            for title in ("Survey the pond", "Draw the food web")
        ]
        survey = create_option(s, context_id=cid, step_id=steps[0].id, data=OptionInput("Net"))
        create_option(s, context_id=cid, step_id=steps[1].id, data=OptionInput("Poster"))
        choice = choices.choose_option(s, context_id=cid, person_id=handing_in, option_id=survey.id)
        choices.start_choice(s, context_id=cid, person_id=handing_in, choice_id=choice.id)
        second_step_id = steps[1].id
    db.dispose()
    try:
        yield Room(demo, second_step_id)
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(COURSE.context_id, None)


def _launch(room: Room, page: Any, user: str) -> Any:
    page.set_default_timeout(15_000)
    page.goto(room.demo.course_url(COURSE.context_id, **{"as": user}))
    return tool_frame(page)


def _follow(page: Any, frame: Any, locator: Any) -> Any:
    with frame.expect_navigation():
        locator.click()
    return tool_frame(page)


def _my_profile(page: Any, frame: Any) -> Any:
    nav = frame.get_by_role("navigation", name="Pathways")
    return _follow(page, frame, nav.get_by_role("link", name="My profile", exact=True))


def _type_my_profile(frame: Any) -> None:
    frame.get_by_label("Interests").fill("surfing, ukulele, volcanoes")
    frame.get_by_label("Career goals in your own words").fill("Marine biologist in Hawaii")
    frame.get_by_role("group", name="Ways of learning you like").get_by_role(
        "checkbox"
    ).first.check()


def test_typed_profile_is_kept_when_the_student_adds_a_goal(room: Room, page_factory: Any) -> None:
    page = page_factory(*SCREEN)
    frame = _my_profile(page, _launch(room, page, PROFILING))
    _type_my_profile(frame)
    frame.get_by_label("Goal", exact=True).fill("Finish the ponds pathway this month")
    frame = _follow(page, frame, frame.get_by_role("button", name="Add goal"))
    expect(frame.locator("main .flash[role=status]")).to_contain_text("Your goal is added")
    # The goal is saved, and what was typed into "About me" is back in it, not saved yet.
    about_me = frame.locator("form", has=frame.get_by_label("Interests"))
    expect(frame.get_by_label("Interests")).to_have_value("surfing, ukulele, volcanoes")
    expect(frame.get_by_label("Career goals in your own words")).to_have_value(
        "Marine biologist in Hawaii"
    )
    ways = frame.get_by_role("group", name="Ways of learning you like").get_by_role("checkbox")
    expect(ways.first).to_be_checked()
    expect(about_me.locator(".kept-note")).to_have_text(
        re.compile(r"Your unsaved changes in “About me” were kept\. They are not saved yet\.")
    )
    # Heard on reaching a field put back.
    described = frame.get_by_label("Interests").get_attribute("aria-describedby") or ""
    assert about_me.locator(".kept-note").get_attribute("id") in described.split()

    frame = _follow(page, frame, frame.get_by_role("button", name="Save my profile"))
    expect(frame.get_by_label("Interests")).to_have_value("surfing, ukulele, volcanoes")
    assert frame.locator(".kept-note").count() == 0  # saved: nothing was put back


def test_typed_profile_is_kept_in_the_tab_where_the_frame_may_keep_storage(
    same_site_room: Room, page_factory: Any
) -> None:
    """Where the frame may use the tab's sessionStorage, the typing is kept there: no cookie
    carries it to the server."""
    page = page_factory(*SCREEN)
    frame = _my_profile(page, _launch(same_site_room, page, SAVING))
    assert frame.evaluate("typeof window.sessionStorage.length") == "number"
    frame.get_by_label("Interests").fill("origami")
    frame.get_by_label("Goal", exact=True).fill("Fold a crane")
    # all_headers(): Playwright's request.headers never holds Cookie, so a check of it passed
    # with the cookie sent.
    requests: list[Any] = []
    page.on("requestfinished", lambda request: requests.append(request))
    frame = _follow(page, frame, frame.get_by_role("button", name="Add goal"))
    expect(frame.locator("main .flash[role=status]")).to_contain_text("Your goal is added")
    expect(frame.get_by_label("Interests")).to_have_value("origami")
    expect(frame.locator(".kept-note")).to_contain_text("Your unsaved changes in “About me”")
    assert requests
    assert not [r for r in requests if "pathways_unsaved_" in r.all_headers().get("cookie", "")]
    assert "origami" not in frame.evaluate("JSON.stringify(sessionStorage)")  # put back once


def test_a_saved_profile_is_confirmed_where_focus_lands(room: Room, page_factory: Any) -> None:
    """Focus was left on <body>, the confirmation at the page's top, screens above "About me";
    a goal's save is confirmed at the goal."""
    page = page_factory(*SCREEN)
    frame = _my_profile(page, _launch(room, page, SAVING))
    frame.get_by_label("Interests").fill("chess")
    frame = _follow(page, frame, frame.get_by_role("button", name="Save my profile"))
    page.wait_for_timeout(1200)  # frame.js places the page once the LMS has sized the frame
    assert frame.evaluate("document.activeElement.id") == "about-me"
    notice = frame.locator("main .flash[role=status]")
    expect(notice).to_have_text("Your profile is saved.")
    described = frame.evaluate("document.activeElement.getAttribute('aria-describedby')")
    assert notice.get_attribute("id") in described.split()


def test_a_hand_in_note_is_kept_when_the_student_chooses_in_another_step(
    room: Room, page_factory: Any
) -> None:
    page = page_factory(*SCREEN)
    frame = _launch(room, page, HANDING_IN)
    frame = _follow(page, frame, frame.get_by_role("link", name="Open Ponds"))
    frame.locator("section.step").first.get_by_label("A note for your teacher").fill(
        "Three newts and a dragonfly larva."
    )
    second = frame.locator(f"#step-{room.second_step_id}")
    frame = _follow(page, frame, second.get_by_role("button", name=re.compile("^Choose")))
    expect(frame.locator("main .flash[role=status]")).to_contain_text("Your choice is saved")
    first = frame.locator("section.step").first
    expect(first.get_by_label("A note for your teacher")).to_have_value(
        "Three newts and a dragonfly larva."
    )
    expect(first.locator(".kept-note")).to_contain_text(
        "Your unsaved changes in “Hand in your work (Step 1: Survey the pond)” were kept"
    )
    # Put back once: the page opened again shows what is saved.
    frame = _follow(page, frame, frame.get_by_role("link", name="My pathways").first)
    frame = _follow(page, frame, frame.get_by_role("link", name="Open Ponds"))
    first = frame.locator("section.step").first
    expect(first.get_by_label("A note for your teacher")).to_have_value("")
    assert frame.locator(".kept-note").count() == 0


def test_typing_kept_for_one_student_never_reaches_the_next_at_the_same_computer(
    room: Room, page_factory: Any
) -> None:
    """A goal sent while the network drops: the profile typed above it is kept in the tab,
    and the next student, launched in that same tab, does not get it."""
    page = page_factory(*SCREEN)
    frame = _my_profile(page, _launch(room, page, CUT_OFF))
    _type_my_profile(frame)
    frame.get_by_label("Goal", exact=True).fill("Swim a mile")
    page.route("**/profile/goals*", lambda route: route.abort())
    frame.get_by_role("button", name="Add goal").click()
    page.wait_for_timeout(500)
    page.unroute("**/profile/goals*")
    frame = _my_profile(page, _launch(room, page, NEXT_AT_THE_DESK))
    assert "Signed in as" in frame.inner_text("#whoami")
    expect(frame.get_by_label("Interests")).to_have_value("")
    expect(frame.get_by_label("Career goals in your own words")).to_have_value("")
    assert frame.locator(".kept-note").count() == 0
