"""Two demo flows clicked through in Chromium the way a newcomer does, with Pathways in the demo
LMS's cross-site frame.

Submission review: the teacher adds a competency's mastery column by deep linking, the column
fills with the class's mastery, "Open in Pathways" on a score opens that student's page with
the column's competency pointed out, and a student opening the column's link lands on their
progress about that competency. Families: the course's parent opens Pathways and sees the
family report of the daughter she observes.

Sources:
- LTI Submission Review 1.0 (https://www.imsglobal.org/spec/lti-sr/v1p0): a line item's
  `submissionReview` asks the LMS for a review link on each score; the link launches an
  `LtiSubmissionReviewRequest` naming the student (`for_user`) and the column.
- moodle/moodle mod/lti/grade.php (4.1+): the grade report's link on a score of an LTI
  activity, the launch the demo gradebook's "Open in Pathways" imitates.
- LTI Deep Linking 2.0 (https://www.imsglobal.org/spec/lti-dl/v2p0#deep-linking-settings):
  `accept_multiple` lets the teacher return several items; each returned item becomes a link
  in the course (Moodle: an activity each, mod/lti/amd/src/contentitem.js), so an item ticked
  in advance is placed beside whatever the teacher ticks.
- instructure/canvas-lms lib/lti/messages/deep_linking_request.rb: Canvas's course placements
  send no default `title` or `text`, so a single placed item keeps the tool's own title.
- instructure/canvas-lms lib/lti/messages/jwt_message.rb `add_mentorship_claims!`: an
  observer's launch carries the Mentor role and the observed students in `role_scope_mentor`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from lti_app import create_app
from lti_app.grades.jobs import RunningWorker, start_in_process_worker
from lti_app.grades.worker import WorkerConfig
from lti_app.tool.models import Context, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, tool_frame
from tests.e2e.test_pages import WIDER_THAN_THE_FRAME, fit_frame, frame_screenshot, seed

COMPETENCY = "CELL.2 Microscopy"
"""No other e2e test places or scores it."""
COLUMN_CHOICE = f"{COMPETENCY} \N{EM DASH} mastery column"
REVIEWED = "José Núñez"
"""Has evidence on Microscopy in the demo content, so his score reaches the column."""
STUDENT = "Kwame Mensah"
"""Has evidence on Microscopy too; no other e2e test launches as him."""
PARENT, CHILD = "Máire O'Brien", "Siobhán O'Brien"

CUT_OFF_IN_PEOPLE_LIST = """() => {
  const list = document.querySelector('section.people');
  const edge = list.getBoundingClientRect().left + list.clientWidth;
  return [...list.querySelectorAll('a')]
    .filter(a => a.getBoundingClientRect().right > edge + 1)
    .map(a => a.textContent.trim());
}"""


@pytest.fixture(scope="module")
def seeded(demo: Demo, database_url: str) -> Demo:
    seed(demo, database_url)
    return demo


@pytest.fixture
def start_score_worker(seeded: Demo) -> Iterator[Callable[[], None]]:
    """Start the score worker `lti-app demo` runs beside Pathways, for the demo's Biology 9 only,
    so the columns fill as they do for someone trying the demo.

    Started once the LMS has made the column: a worker that looks for it before (between
    Pathways' answer and the LMS's placing it) looks again only after
    `line_item_sync.LMS_COLUMN_LOOK_AGAIN`, 30 s.
    """
    app = create_app(seeded.settings)
    database = app.extensions["lti_app.db"]
    running: list[RunningWorker] = []

    def start() -> None:
        with database.begin() as session:
            context_id = session.scalar(
                select(Context.id)
                .join(Platform, Platform.id == Context.platform_id)
                .where(registration_of(seeded.lms), Context.context_id == "course-bio9")
            )
        assert context_id is not None
        config = WorkerConfig(context_ids=frozenset({context_id}), poll_interval=0.2)
        running.append(start_in_process_worker(app, config))

    yield start
    for worker in running:
        worker.stop()
    database.dispose()


def _frame_document(page: Any) -> Any:
    """Whatever document the LMS's frame shows now (the LMS's own pages have no main)."""
    return page.wait_for_selector("iframe#tool-frame").content_frame()


def _fits_the_frame(page: Any, frame: Any, name: str) -> None:
    fit_frame(page, frame, 700)
    assert frame.evaluate(WIDER_THAN_THE_FRAME) == [], name
    frame_screenshot(page, f"review-family-{name}-700")


def _open_gradebook_until_scored(page: Any, student: str, timeout: float = 15) -> Any:
    """Reload the LMS gradebook, as a person would, until the student's score is in."""
    deadline = time.monotonic() + timeout
    while True:
        grid = page.get_by_role("table").first  # under it, every score received
        row = grid.get_by_role("row").filter(has=page.get_by_role("cell", name=student))
        if row.get_by_role("link", name="Open in Pathways").count() == 1:
            return row
        assert time.monotonic() < deadline, f"no score for {student} in the LMS gradebook"
        page.wait_for_timeout(250)
        page.reload()


def test_a_mastery_column_added_by_deep_linking_opens_each_score_in_pathways(
    seeded: Demo, page_factory: Any, start_score_worker: Callable[[], None]
) -> None:
    from playwright.sync_api import expect

    demo = seeded
    page = page_factory()
    page.set_default_timeout(10_000)
    page.goto(demo.course_url())
    # In a 1100 px window every launch button is whole beside the 700 px frame.
    assert page.evaluate(CUT_OFF_IN_PEOPLE_LIST) == []

    # The teacher opens the picker from her row and ticks one competency's column.
    teacher_row = page.get_by_role("row").filter(has_text="Amara Okafor")
    teacher_row.get_by_role("link", name="Add Pathways via Deep Linking").click()
    frame = tool_frame(page)
    expect(frame.get_by_role("heading", level=1)).to_have_text("Add Pathways to your course")
    frame.get_by_label(COLUMN_CHOICE).check()
    frame.get_by_role("button", name="Add to course").click()

    # The LMS says what it placed: that column's link, and nothing the teacher did not tick.
    in_frame = page.frame_locator("iframe#tool-frame")
    expect(in_frame.get_by_role("heading", level=1)).to_have_text("1 item(s) added by Pathways")
    expect(in_frame.get_by_role("row")).to_have_count(2)
    expect(in_frame.get_by_role("row").nth(1)).to_contain_text(COLUMN_CHOICE)
    _fits_the_frame(page, _frame_document(page), "deep-link-added")
    start_score_worker()

    # Its column is in the gradebook, and fills with the class's mastery.
    in_frame.get_by_role("link", name="Gradebook").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gradebook")
    expect(page.get_by_role("columnheader", name=re.compile(COMPETENCY))).to_be_visible()
    row = _open_gradebook_until_scored(page, REVIEWED)
    expect(row).to_contain_text(re.compile(r"\d\.\d / 4\.0"))

    # "Open in Pathways" on the score opens the course with that student's page in the frame.
    row.get_by_role("link", name="Open in Pathways").click()
    frame = tool_frame(page)
    expect(frame.get_by_role("heading", level=1)).to_have_text(REVIEWED)
    expect(frame.locator(".role-badge")).to_have_text("Teacher")
    note = frame.get_by_role("status").filter(has_text="Opened from the LMS gradebook")
    expect(note).to_have_text(
        "Opened from the LMS gradebook, the mastery column of CELL.2 · Microscopy."
    )
    target = note.get_by_role("link", name="CELL.2 · Microscopy").get_attribute("href")
    assert target is not None
    expect(frame.locator(target)).to_have_text("CELL.2 · Microscopy")
    _fits_the_frame(page, frame, "teacher-review")
    # The LMS sizes its frame to the whole page, so a jump to a place on the page has to move
    # the LMS's page (a browser does not, for a frame from another site).
    check_ins = frame.get_by_role("heading", name="Check-ins", level=2)
    page.set_viewport_size({"width": 1100, "height": 800})  # a laptop's window, not the page
    page.evaluate("window.scrollTo(0, 0)")
    window_height = page.evaluate("window.innerHeight")

    def top_in_window() -> float:
        box = check_ins.bounding_box()  # where the LMS's window shows it
        assert box is not None
        return float(box["y"])

    assert top_in_window() >= window_height
    frame.get_by_role("navigation", name="On this page").get_by_role(
        "link", name="Check-ins"
    ).click()
    deadline = time.monotonic() + 5
    while not 0 <= top_in_window() < window_height:
        assert time.monotonic() < deadline, "the jump left the heading out of the LMS's window"
        time.sleep(0.05)
    expect(check_ins).to_be_focused()

    # A student opens the column's link from the course: their progress, about that competency.
    page.get_by_role("link", name="Course home").click()
    links = page.get_by_label("Pathways link:")
    placed = links.locator("option").filter(has_text=COLUMN_CHOICE).inner_text()
    links.select_option(label=placed)
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name=f"Launch as {STUDENT}").click()
    frame = tool_frame(page)
    expect(frame.get_by_role("heading", level=1)).to_have_text("My progress")
    expect(frame.locator(".role-badge")).to_have_text("Student")
    expect(frame.get_by_role("status").filter(has_text="This activity")).to_have_text(
        f"This activity of your course is about {COMPETENCY}."
    )
    _fits_the_frame(page, frame, "student-column-link")


def test_the_parent_launch_shows_her_daughters_family_report(
    seeded: Demo, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    page = page_factory()
    page.set_default_timeout(10_000)
    page.goto(seeded.course_url())
    parent_row = page.get_by_role("row").filter(has_text=PARENT)
    expect(parent_row.get_by_role("cell").nth(1)).to_have_text("Parent")
    assert page.evaluate(CUT_OFF_IN_PEOPLE_LIST) == []

    parent_row.get_by_role("link", name=f"Launch as {PARENT}").click()
    frame = tool_frame(page)
    expect(frame.get_by_role("heading", level=1)).to_have_text(CHILD)
    expect(frame.locator(".role-badge")).to_have_text("Family")
    expect(frame.get_by_text("Progress report · Biology 9 — Living Systems")).to_be_visible()
    expect(frame.get_by_role("heading", name="How to read this report")).to_be_visible()
    # A parent reaches the reports and nothing of the teachers' or the students' pages.
    expect(frame.get_by_role("navigation", name="Pathways").get_by_role("link")).to_have_text(
        ["Reports"]
    )
    _fits_the_frame(page, frame, "parent-family-report")
