"""Unsaved typing kept across another form's save goes back only where it was typed, is never
lost without a word, and, where the frame has no sessionStorage, travels in a cookie as little
as can be (real Chromium, in the LMS's cross-site frame, which is refused sessionStorage)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import PEOPLE, STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.learners.models import Goal
from lti_app.pathways import choices, services
from lti_app.pathways.options import OptionInput, create_option
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, tool_frame

COURSE = Course(
    context_id="course-e2e-unsaved-kept-safely",
    label="KEPT",
    title="Unsaved typing kept safely",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[5:10]),
    ),
)
THREE_GOALS, TWO_GOALS, WORKING, AT_THE_DESK, NEXT_AT_THE_DESK = (s.user_id for s in STUDENTS[5:10])
"""A student whose teacher deletes one of three goals, one with two goals for the typing that
cannot go back, one with work started on a pathway, and two who share a computer."""
SCREEN = (1100, 900)


@dataclass(frozen=True)
class Room:
    demo: Demo
    database_url: str
    person_ids: dict[str, int]
    goal_ids: dict[str, list[int]]


@pytest.fixture(scope="module")
def room(demo: Demo, database_url: str) -> Iterator[Room]:
    with _room_in(demo, database_url) as room:
        yield room


@contextmanager
def _room_in(demo: Demo, database_url: str) -> Iterator[Room]:
    platform = demo.lms.platform
    link_id = lms_seed.default_resource_link_id(COURSE)
    lms_seed.COURSES[COURSE.context_id] = COURSE
    platform.state.resource_links[link_id] = ResourceLink(link_id, COURSE.context_id, "Pathways")
    db = Database(database_url)
    with db.begin() as s:
        platform_id = s.scalars(select(Platform.id).where(registration_of(demo.lms))).one()
        context = Context(platform_id=platform_id, context_id=COURSE.context_id, title=COURSE.title)
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
        apply_members(s, platform_id=platform_id, context_id=cid, members=members)
        person_ids = {
            e.user_id: s.scalars(
                select(Person.id).where(Person.platform_id == platform_id, Person.sub == e.user_id)
            ).one()
            for e in COURSE.enrollments
        }
        goal_ids: dict[str, list[int]] = {}
        for student, texts in (
            (THREE_GOALS, ("Read two books", "Learn to swim", "Build a kite")),
            (TWO_GOALS, ("Plant a hedge", "Keep a bird diary")),
        ):
            goal_ids[student] = []
            for text in texts:
                goal = add_goal(
                    s,
                    context_id=cid,
                    person_id=person_ids[student],
                    text=text,
                    created_by_id=person_ids[TEACHER.user_id],
                    editor_is_teacher=True,
                )
                s.flush()
                goal_ids[student].append(goal.id)
        pathway = services.create_pathway(s, context_id=cid, title="Ponds")
        steps = [
            services.create_step(s, context_id=cid, pathway_id=pathway.id, title=title)
            for title in ("Survey the pond", "Draw the food web")
        ]
        survey = create_option(s, context_id=cid, step_id=steps[0].id, data=OptionInput("Net"))
        create_option(s, context_id=cid, step_id=steps[1].id, data=OptionInput("Poster"))
        choice = choices.choose_option(
            s, context_id=cid, person_id=person_ids[WORKING], option_id=survey.id
        )
        choices.start_choice(s, context_id=cid, person_id=person_ids[WORKING], choice_id=choice.id)
    db.dispose()
    try:
        yield Room(demo, database_url, person_ids, goal_ids)
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(COURSE.context_id, None)


def _launch(room: Room, page: Any, user: str) -> Any:
    page.set_default_timeout(15_000)
    page.goto(room.demo.course_url(COURSE.context_id, **{"as": user}))
    frame = tool_frame(page)
    denied = "(() => { try { return !window.sessionStorage } catch (e) { return true } })()"
    assert frame.evaluate(denied)  # the cross-site frame: the cookie is what keeps typing
    return frame


def _follow(page: Any, frame: Any, locator: Any) -> Any:
    with frame.expect_navigation():
        locator.click()
    return tool_frame(page)


def _students_page(room: Room, page: Any, student: str) -> Any:
    frame = _launch(room, page, TEACHER.user_id)
    link = frame.locator(f'a[href^="/course/students/{room.person_ids[student]}?"]').first
    return _follow(page, frame, link)


def _my_profile(page: Any, frame: Any) -> Any:
    nav = frame.get_by_role("navigation", name="Pathways")
    return _follow(page, frame, nav.get_by_role("link", name="My profile", exact=True))


def _delete_goal(page: Any, frame: Any, goal_id: int) -> Any:
    card = frame.locator(f"#goal-{goal_id}")
    card.locator("summary").click()
    return _follow(page, frame, card.get_by_role("button", name="Delete the goal for good"))


def test_typing_stays_with_its_goal_when_another_goal_is_deleted(
    room: Room, page_factory: Any
) -> None:
    """Every goal's form and "Add a goal" send to one address: deleting goal 1 moved the
    others up, and goal 2's "Met" went into goal 3 while the new goal's words were lost."""
    page = page_factory(*SCREEN)
    frame = _students_page(room, page, THREE_GOALS)
    first, second, third = room.goal_ids[THREE_GOALS]
    frame.locator(f"#goal-{second}-status").select_option("met")
    frame.locator("#goal-new-text").fill("Swim 500 metres by June")
    frame = _delete_goal(page, frame, first)
    expect(frame.locator(f"#goal-{first}")).to_have_count(0)
    expect(frame.locator(f"#goal-{third}-status")).not_to_have_value("met")
    expect(frame.locator(f"#goal-{second}-status")).to_have_value("met")
    expect(frame.locator("#goal-new-text")).to_have_value("Swim 500 metres by June")
    expect(frame.locator(f"#goal-{second} .kept-note")).to_have_attribute("role", "status")
    expect(frame.locator(".kept-note")).to_have_count(2)
    assert frame.locator("#unsaved-not-put-back").count() == 0
    # Said in the confirmation too, which frame.js shows and focuses at the place saved.
    expect(frame.locator("main .flash[role=status]").first).to_contain_text(
        re.compile(r"Your unsaved changes in .*“Add a goal”.* were kept, not saved yet\.")
    )


def test_typing_that_cannot_go_back_is_shown_to_copy_and_never_put_in_half(
    room: Room, page_factory: Any
) -> None:
    """The teacher rewrites one goal and drops another, then deletes the first goal; meanwhile
    the second goal was saved elsewhere: neither typing goes into a form, and both are shown."""
    page = page_factory(*SCREEN)
    frame = _students_page(room, page, TWO_GOALS)
    hedge, diary = room.goal_ids[TWO_GOALS]
    frame.locator(f"#goal-{hedge}-text").fill("Plant a hedge of hawthorn")
    frame.locator(f"#goal-{diary}-text").fill("Keep a bird diary all winter")
    frame.locator(f"#goal-{diary}-status").select_option("dropped")
    db = Database(room.database_url)
    with db.begin() as s:  # saved meanwhile, in another tab
        s.execute(update(Goal).where(Goal.id == diary).values(text="Keep a bird and bat diary"))
    db.dispose()
    frame = _delete_goal(page, frame, hedge)
    expect(frame.locator(f"#goal-{diary}-text")).to_have_value("Keep a bird and bat diary")
    expect(frame.locator(f"#goal-{diary}-status")).not_to_have_value("dropped")
    assert frame.locator(".kept-note").count() == 0
    lost = frame.locator("#unsaved-not-put-back")
    expect(lost).to_have_attribute("role", "status")
    expect(lost).to_contain_text(
        re.compile(r"^Your unsaved changes in “Goals” could not be put back")
    )
    expect(lost.locator(".kept-text")).to_have_text(
        ["Plant a hedge of hawthorn", "Keep a bird diary all winter"]
    )


def test_the_kept_cookie_goes_only_to_its_page_and_ends_with_the_browser(
    room: Room, page_factory: Any
) -> None:
    page = page_factory(*SCREEN)
    frame = _launch(room, page, WORKING)
    frame = _follow(page, frame, frame.get_by_role("link", name="Open Ponds"))
    page_path = frame.evaluate("location.pathname")
    first = frame.locator("section.step").first
    first.get_by_label("A note for your teacher").fill("Private: I could not finish.")
    requests: list[Any] = []
    page.on("requestfinished", lambda request: requests.append(request))
    second = frame.locator("section.step").nth(1)
    frame = _follow(page, frame, second.get_by_role("button", name=re.compile("^Choose")))
    first = frame.locator("section.step").first
    expect(first.get_by_label("A note for your teacher")).to_have_value(
        "Private: I could not finish."
    )
    carrying = [
        r.url.split("?")[0]
        for r in requests
        if "pathways_unsaved_" in r.all_headers().get("cookie", "")
    ]
    # Not the static files, not the POST to another address: the page's own GET only.
    assert carrying == [frame.evaluate("location.origin") + page_path]
    assert not [c for c in page.context.cookies() if c["name"].startswith("pathways_unsaved_")]


def test_kept_cookie_keeps_its_path_and_session_life(room: Room, page_factory: Any) -> None:
    """The save does not come back (the network drops): the cookie stays, for that page and
    this browser session only."""
    page = page_factory(*SCREEN)
    frame = _my_profile(page, _launch(room, page, AT_THE_DESK))
    frame.get_by_label("Interests").fill("SECRET-of-A: I want to leave this school")
    frame.locator("#new-goal-text").fill("Swim a mile")
    page.route("**/profile/goals*", lambda route: route.abort())
    frame.get_by_role("button", name="Add goal").click()
    page.wait_for_timeout(500)
    kept = [c for c in page.context.cookies() if c["name"].startswith("pathways_unsaved_")]
    assert [(c["path"], c["expires"]) for c in kept] == [("/profile/", -1)]
    # The next student, in a new tab of the same browser: nothing of it travels with theirs.
    page.close()
    page = page.context.new_page()
    requests: list[Any] = []
    page.on("requestfinished", lambda request: requests.append(request))
    frame = _my_profile(page, _launch(room, page, NEXT_AT_THE_DESK))
    expect(frame.get_by_label("Interests")).to_have_value("")
    launch_requests = [r for r in requests if "/profile" not in r.url]
    assert launch_requests
    assert not [r for r in launch_requests if "SECRET-of-A" in r.all_headers().get("cookie", "")]
    assert frame.locator(".kept-note").count() == 0


def test_a_profile_in_chinese_is_kept_without_a_second_press(room: Room, page_factory: Any) -> None:
    """encodeURIComponent() spent 9 bytes a character: 360 characters were "too much to keep"."""
    page = page_factory(*SCREEN)
    frame = _my_profile(page, _launch(room, page, NEXT_AT_THE_DESK))
    interests = "我喜欢池塘里的蝾螈和蜻蜓" * 90  # 1080 characters
    frame.get_by_label("Interests").fill(interests)
    frame.locator("#new-goal-text").fill("Finish the ponds pathway")
    frame = _follow(page, frame, frame.get_by_role("button", name="Add goal"))
    expect(frame.locator("main .flash[role=status]").first).to_contain_text("Your goal is added")
    expect(frame.get_by_label("Interests")).to_have_value(interests)
    assert frame.locator("#unsaved-elsewhere").count() == 0


def test_too_much_to_keep_in_a_cookie_still_asks_before_it_is_lost(
    room: Room, page_factory: Any
) -> None:
    page = page_factory(*SCREEN)
    frame = _my_profile(page, _launch(room, page, WORKING))
    frame.get_by_label("Interests").fill("我喜欢池塘里的蝾螈和蜻蜓" * 150)
    frame.locator("#new-goal-text").fill("Finish the ponds pathway")
    frame.get_by_role("button", name="Add goal").click()
    expect(frame.locator("#unsaved-elsewhere")).to_contain_text("Not sent yet")
    frame = _follow(page, frame, frame.get_by_role("button", name="Add goal"))
    expect(frame.locator("main .flash[role=status]").first).to_contain_text("Your goal is added")
