"""A teacher reads a student's choices on a phone-wide LMS frame (real Chromium): each choice is
a card, every value named, and the work with its earlier tries gets the frame's width instead of
a column at the right of a table swiped sideways, ten characters to a line. A wider frame keeps
the table."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.courses.recording import record_and_close
from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import PEOPLE, STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.pathways import choices
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.retrying import try_step_again
from lti_app.pathways.services import create_pathway, create_step
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, tool_frame
from tests.e2e.test_pages import fit_frame

COURSE = Course(
    context_id="course-e2e-earlier-tries",
    label="TRIES",
    title="Earlier tries on a phone",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        Enrollment(STUDENTS[0].user_id, Role.LEARNER),
    ),
)
STUDENT_NAME = PEOPLE[STUDENTS[0].user_id].name
WORK_URL = "https://drive.example.org/files/d/" + "1AbCdEfGhIjKlMnOp" * 6 + "/view"
EVIDENCE_NOTE = "Mixed up the nucleus and the vacuole; drew the cell wall round an animal cell."


def _seed(s: Any, platform_id: int) -> None:
    """The student's first try at a step, closed with a level, and a second one handed in."""
    context = Context(platform_id=platform_id, context_id=COURSE.context_id, title=COURSE.title)
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
    apply_members(s, platform_id=platform_id, context_id=context.id, members=members)
    people = dict(
        s.execute(
            select(Person.sub, Person.id).where(
                Person.platform_id == platform_id, Person.sub.in_([m.user_id for m in members])
            )
        ).all()
    )
    teacher, student = people[TEACHER.user_id], people[STUDENTS[0].user_id]
    cid = context.id
    competency = create_competency(s, context_id=cid, code="CELL", title="Cell structure")
    pathway = create_pathway(s, context_id=cid, title="Cells and life")
    step = create_step(
        s, context_id=cid, pathway_id=pathway.id, title="Meet the cell", competency_id=competency.id
    )
    # A step that builds on the first is what lets a student try the first again.
    create_step(
        s,
        context_id=cid,
        pathway_id=pathway.id,
        title="Look through the microscope",
        prerequisite_ids=[competency.id],
    )
    option = create_option(s, context_id=cid, step_id=step.id, data=OptionInput("Cell tour"))
    choice = choices.choose_option(s, context_id=cid, person_id=student, option_id=option.id)
    choices.start_choice(s, context_id=cid, person_id=student, choice_id=choice.id)
    choices.submit_choice(
        s,
        context_id=cid,
        person_id=student,
        choice_id=choice.id,
        note="Labelled worksheet of the plant and the animal cell.",
        url=WORK_URL,
    )
    s.flush()
    record_and_close(
        s,
        context_id=cid,
        competency_id=competency.id,
        student_ids=[student],
        points=Decimal(2),
        note=EVIDENCE_NOTE,
        recorded_by_id=teacher,
    )
    s.flush()
    try_step_again(s, context_id=cid, person_id=student, choice_id=choice.id)
    s.flush()
    choices.start_choice(s, context_id=cid, person_id=student, choice_id=choice.id)
    choices.submit_choice(
        s, context_id=cid, person_id=student, choice_id=choice.id, note="Second go", url=WORK_URL
    )


@pytest.fixture(scope="module")
def course(demo: Demo, database_url: str) -> Iterator[Demo]:
    """A course of its own in the demo LMS: its teacher, and a student on a second try."""
    platform = demo.lms.platform
    link_id = lms_seed.default_resource_link_id(COURSE)
    lms_seed.COURSES[COURSE.context_id] = COURSE
    platform.state.resource_links[link_id] = ResourceLink(link_id, COURSE.context_id, "Pathways")
    db = Database(database_url)
    with db.begin() as s:
        platform_id = s.scalars(select(Platform.id).where(registration_of(demo.lms)))
        _seed(s, platform_id.one())
    db.dispose()
    try:
        yield demo
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(COURSE.context_id, None)


def _student_page(course: Demo, page_factory: Any) -> tuple[Any, Any]:
    page = page_factory()
    page.set_default_timeout(15_000)
    page.goto(course.course_url(COURSE.context_id, **{"as": TEACHER.user_id}))
    frame = tool_frame(page)
    for link in (
        frame.get_by_role("navigation", name="Pathways").get_by_role(
            "link", name="Overview", exact=True
        ),
        frame.get_by_role("link", name=STUDENT_NAME, exact=True).first,
    ):
        with frame.expect_navigation():
            link.click()
        frame = tool_frame(page)
    frame.get_by_text("Earlier tries (1)").click()
    return page, frame


WORK_CELL = """() => {
  const cell = document.querySelector('details.earlier-tries').closest('td');
  const box = cell.getBoundingClientRect();
  const wrap = cell.closest('.table-wrap');
  return {left: box.left, right: box.right, width: box.width,
          frameWidth: document.documentElement.clientWidth,
          swipes: wrap.scrollWidth > wrap.clientWidth,
          headings: getComputedStyle(cell.closest('table').tHead).display !== 'none',
          names: [...cell.closest('tr').cells].map(
            c => getComputedStyle(c, '::before').content.replace(/^"|"$/g, '').trim())};
}"""


def test_on_a_phone_each_choice_is_a_card_with_the_work_full_width(
    course: Demo, page_factory: Any
) -> None:
    page, frame = _student_page(course, page_factory)
    fit_frame(page, frame, 375)
    cell = frame.evaluate(WORK_CELL)
    # The work and its earlier tries: in sight, most of the frame wide, nothing to swipe.
    assert cell["left"] >= 0, cell
    assert cell["right"] <= cell["frameWidth"], cell
    assert cell["width"] >= 0.75 * cell["frameWidth"], cell
    assert not cell["swipes"], cell
    # With the column headings hidden, each value says what it is.
    assert not cell["headings"]
    assert cell["names"][1:] == ["Option:", "Status:", "Since:", "Work and feedback:"]
    tries = frame.locator("details.earlier-tries")
    assert EVIDENCE_NOTE in tries.inner_text()


def test_a_wider_frame_keeps_the_table(course: Demo, page_factory: Any) -> None:
    page, frame = _student_page(course, page_factory)
    fit_frame(page, frame, 700)
    cell = frame.evaluate(WORK_CELL)
    assert cell["headings"], "the column headings show"
    assert not cell["swipes"], cell
    assert cell["width"] >= 0.35 * cell["frameWidth"], cell
