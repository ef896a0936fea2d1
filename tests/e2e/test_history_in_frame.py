"""The browser's Back and reload in the LMS's frame, after a form was sent and after a page was
kept open longer than a launch token lives: each brings back a Pathways page, never Chromium's
"Confirm form resubmission" error, a second save, or "Your Pathways session has ended" while
the launch session lives on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from lti_app import create_app
from lti_app.competencies.services import create_competency
from lti_app.db import Database, utcnow
from lti_app.demo import seed as lms_seed
from lti_app.demo.run import register_demo_platform
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.server import serve_in_thread, start_demo_platform
from lti_app.demo.state import ResourceLink
from lti_app.settings import load_settings
from lti_app.tool.models import Context, LaunchSession, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, tool_frame
from tests.security_support import launch_session_id

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
        platform_id = session.scalars(select(Platform.id).where(registration_of(demo.lms))).one()
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


TOKEN_TTL = 60
"""The shortest launch token life settings allow: pages renew theirs every 20 seconds."""


@pytest.fixture(scope="module")
def short_token_demo(
    database_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    settings = load_settings(
        {},
        env="test",
        secret_key="e2e-secret-" + "t" * 32,
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        instance_path=str(tmp_path_factory.mktemp("short-token")),
        secure_cookies=True,
        launch_token_ttl=TOKEN_TTL,
    )
    app = create_app(settings)
    tool_url, stop_tool = serve_in_thread(app, "127.0.0.1")
    # Its own client_id: a loopback port an earlier test's LMS had gives the same issuer, and
    # its courses and people (a student's goals, self-assessments) would be this LMS's too.
    lms = start_demo_platform(
        tool_url, host="localhost", client_id=f"pathways-e2e-{uuid.uuid4().hex[:8]}"
    )
    db = Database(database_url)
    with db.begin() as session:
        register_demo_platform(session, lms.platform)
    db.dispose()
    yield Demo(tool_url, lms, settings)
    lms.stop()
    stop_tool()
    app.extensions["lti_app.db"].dispose()


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["lt"][0]


def test_back_to_a_page_older_than_its_token_opens_it_while_the_session_lives(
    short_token_demo: Demo, page_factory: Any, database_url: str
) -> None:
    """A teacher keeps "Record evidence" open through a lesson, longer than a token lives:
    that page renews its own token, but the launch page before it in the frame's history
    keeps the one it was opened with. Back opens it all the same, with the newest token this
    tab kept (Chromium here blocks third-party cookies, and so sessionStorage in the frame:
    the partitioned cookie carries it). Once the launch session ends, the one retry stops."""
    demo = short_token_demo
    page = page_factory()
    opened: list[str] = []
    page.on("request", lambda r: opened.append(r.url) if "/home?" in r.url else None)
    page.goto(demo.course_url(**{"as": TEACHER.user_id}))
    launched_at = time.monotonic()
    frame = tool_frame(page)
    heading = frame.inner_text("main h1")
    first = _token(frame.url)
    frame.click("nav >> text=Record evidence")
    frames = page.frame_locator("iframe#tool-frame")
    frames.locator("nav [aria-current=page]", has_text="Record evidence").wait_for()
    shown = tool_frame(page).get_attribute("body", "data-launch-token")
    page.wait_for_timeout(max(0.0, TOKEN_TTL + 3 - (time.monotonic() - launched_at)) * 1000)
    frame = tool_frame(page)
    assert frame.get_attribute("body", "data-launch-token") != shown  # renewed while open
    assert frame.locator("#session-ended").count() == 0  # the session is alive

    page.evaluate("history.back()")
    frames.locator("main h1", has_text=heading).wait_for()
    back = tool_frame(page).url
    assert "/home?" in back
    assert _token(back) != first  # opened with the newest token, in place of the expired one

    # The launch session ends (its 12 hours): the expired token's page tries once, and the
    # newest token's page says the session ended, and stays.
    db = Database(database_url)
    with db.begin() as session:
        row = session.get(LaunchSession, launch_session_id(demo.settings.secret_key, first))
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
    db.dispose()
    opened.clear()
    tool_frame(page).evaluate(
        "url => { window.location.href = url; }", back.replace(_token(back), first)
    )
    frames.locator("main h1", has_text="Please open Pathways again").wait_for()
    page.wait_for_timeout(1500)
    assert len(opened) == 2, opened  # the expired token's address, then the newest's
    assert _token(opened[0]) == first
    assert _token(opened[1]) != first


def _student_page(course: Demo, page: Any, student_index: int) -> Any:
    """The teacher's page of one of the course's students, in the LMS frame."""
    page.goto(course.course_url(COURSE.context_id, **{"as": TEACHER.user_id}))
    frames = page.frame_locator("iframe#tool-frame")
    name = STUDENTS[student_index].given_name
    tool_frame(page)
    for _ in range(10):  # the roster arrives from the LMS just after the teacher's launch
        if frames.locator(f"main a:has-text('{name}')").count():
            break
        page.wait_for_timeout(500)
        tool_frame(page).evaluate("location.reload()")
        tool_frame(page)
    tool_frame(page).click(f"main a:has-text('{name}')")
    frames.locator("#ci-note").wait_for()
    return frames


def test_back_after_a_refused_form_then_a_saved_one_opens_the_page_again(
    course: Demo, page_factory: Any
) -> None:
    """The 400 page of a refused check-in answered a POST: Back to it from the saved page
    showed Chromium's "Confirm Form Resubmission" in the frame."""
    page = page_factory()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    frames = _student_page(course, page, 0)
    # The field's max now stops a future date in the browser; the server's own refusal is the
    # one this test needs (an older page, or a browser that does not check).
    frames.locator("#ci-date").evaluate("field => field.removeAttribute('max')")
    frames.locator("#ci-date").fill("2099-01-01")
    frames.locator("#ci-note").fill("We talked about the lab report.")
    frames.locator("button", has_text="Add check-in").click()
    frames.locator("#error-summary").wait_for()
    frames.locator("#ci-date").fill("2026-01-05")
    frames.locator("button", has_text="Add check-in").click()
    frames.locator("main .flash").first.wait_for()
    sent = len(posts)
    page.evaluate("history.back()")
    page.wait_for_timeout(1500)
    frames.locator("main h1").first.wait_for(timeout=5000)  # a Pathways page, no error
    assert not any(f.url.startswith("chrome-error") for f in page.frames)
    assert len(posts) == sent, posts[sent:]


def test_back_after_saving_a_check_in_gives_an_empty_add_form(
    course: Demo, page_factory: Any
) -> None:
    """Back brought the saved note back into "Add a check-in", where Add stored it twice."""
    page = page_factory()
    frames = _student_page(course, page, 1)
    frames.locator("#ci-note").fill("Back-button check-in note")
    frames.locator("button", has_text="Add check-in").click()
    frames.locator("main .flash").first.wait_for()
    page.evaluate("history.back()")
    page.wait_for_timeout(1500)
    frames.locator("#ci-note").wait_for()
    assert frames.locator("#ci-note").input_value() == ""
