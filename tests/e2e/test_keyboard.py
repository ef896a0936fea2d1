"""Keyboard and screen-reader use of forms in the LMS's frame (real Chromium): Enter in a field
after a "Not saved yet" warning asks again rather than confirming it; the warning, like a
refusal, takes focus and comes into the LMS's screen; a save's confirmation is seen and heard
where the page puts focus."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo import seed as lms_seed
from lti_app.demo.seed import PEOPLE, STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.state import ResourceLink
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices, services
from lti_app.pathways.options import OptionInput, create_option
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import registration_of
from tests.e2e.conftest import Demo, tool_frame

COURSE = Course(
    context_id="course-e2e-keyboard",
    label="KEYS",
    title="Keyboard in the frame",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:3]),
    ),
)
WORKING, MASTERING, CHOOSING = (s.user_id for s in STUDENTS[:3])
"""The student with work in the first step, the one who mastered the parent through its parts,
and the one who chooses and rates themself in the tests."""
SCREEN = (1100, 600)
LONG = Course(
    context_id="course-e2e-keyboard-long",
    label="LONG",
    title="Thirty competencies",
    enrollments=(Enrollment(TEACHER.user_id, Role.INSTRUCTOR),),
)


@dataclass(frozen=True)
class Keys:
    demo: Demo
    first_step_id: int
    last_step_id: int
    mastering_evidence_id: int
    """One of the two pieces of evidence the parent is mastered through."""


def _people(session: Any, platform_id: int, context_id: int) -> dict[str, int]:
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
    apply_members(session, platform_id=platform_id, context_id=context_id, members=members)
    rows = session.execute(
        select(Person.sub, Person.id).where(
            Person.platform_id == platform_id, Person.sub.in_([m.user_id for m in members])
        )
    )
    return dict(rows.all())


@pytest.fixture(scope="module")
def keys(demo: Demo, database_url: str) -> Iterator[Keys]:
    """A course of its own in the demo LMS: a parent mastered through its two parts by one
    student, a pathway of five steps (the first with another student's work started in it)."""
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
        people = _people(s, context.platform_id, cid)
        teacher = people[TEACHER.user_id]
        parent = create_competency(s, context_id=cid, code="CELL", title="Cells").id
        for i in (1, 2):
            part = create_competency(
                s, context_id=cid, code=f"CELL.{i}", title=f"Part {i}", parent_id=parent
            ).id
            record_evidence(
                s,
                context_id=cid,
                competency_id=part,
                student_ids=[people[MASTERING]],
                points=Decimal(4),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=teacher,
            )
        evidence_id = s.scalars(select(Evidence.id).where(Evidence.competency_id == part)).one()
        field = create_competency(s, context_id=cid, code="FIELD", title="Field work").id
        pathway = services.create_pathway(s, context_id=cid, title="Ponds")
        step_ids = []
        for n in range(1, 6):
            step = services.create_step(
                s,
                context_id=cid,
                pathway_id=pathway.id,
                title=f"Pond step {n}",
                description="<p>"
                + "Look closely at the pond and write down what lives there. " * 12
                + "</p>",
                competency_id=field,
            )
            create_option(s, context_id=cid, step_id=step.id, data=OptionInput(f"Survey {n}"))
            step_ids.append(step.id)
        option = create_option(
            s, context_id=cid, step_id=step_ids[0], data=OptionInput("Net the pond")
        )
        choice = choices.choose_option(
            s, context_id=cid, person_id=people[WORKING], option_id=option.id
        )
        choices.start_choice(s, context_id=cid, person_id=people[WORKING], choice_id=choice.id)
    db.dispose()
    try:
        yield Keys(demo, step_ids[0], step_ids[-1], evidence_id)
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(COURSE.context_id, None)


@pytest.fixture(scope="module")
def long_course(demo: Demo, database_url: str) -> Iterator[Demo]:
    """A course of its own whose Competencies table is many screens tall."""
    platform = demo.lms.platform
    link_id = lms_seed.default_resource_link_id(LONG)
    lms_seed.COURSES[LONG.context_id] = LONG
    platform.state.resource_links[link_id] = ResourceLink(link_id, LONG.context_id, "Pathways")
    db = Database(database_url)
    with db.begin() as s:
        platform_id = s.scalars(select(Platform.id).where(registration_of(demo.lms)))
        context = Context(
            platform_id=platform_id.one(), context_id=LONG.context_id, title=LONG.title
        )
        s.add(context)
        s.flush()
        for i in range(30):
            create_competency(s, context_id=context.id, code=f"L.{i:02}", title=f"Skill {i}")
    db.dispose()
    try:
        yield demo
    finally:
        platform.state.resource_links.pop(link_id, None)
        lms_seed.COURSES.pop(LONG.context_id, None)


def _launch(keys: Keys, page_factory: Any, user: str) -> tuple[Any, Any]:
    page = page_factory(*SCREEN)
    page.set_default_timeout(15_000)
    page.goto(keys.demo.course_url(COURSE.context_id, **{"as": user}))
    return page, tool_frame(page)


def _follow(page: Any, frame: Any, locator: Any) -> Any:
    with frame.expect_navigation():
        locator.click()
    return tool_frame(page)


def _nav(page: Any, frame: Any, label: str) -> Any:
    nav = frame.get_by_role("navigation", name="Pathways")
    return _follow(page, frame, nav.get_by_role("link", name=label, exact=True))


def _press_enter_in(page: Any, frame: Any, field: str, typed: str) -> Any:
    """Type at the end of a field and press Enter, as one does to send a form."""
    frame.focus(field)
    page.keyboard.press("End")
    page.keyboard.type(typed)
    with frame.expect_navigation():
        page.keyboard.press("Enter")
    return tool_frame(page)


def _settled(page: Any, frame: Any) -> None:
    """Let frame.js place the page: it waits for the LMS's resize, at most a second."""
    page.wait_for_timeout(1200)


def _on_screen(page: Any, frame: Any, selector: str) -> bool:
    """Whether all of `selector`'s top line is in the LMS's window."""
    frame_top = page.evaluate("document.getElementById('tool-frame').getBoundingClientRect().top")
    top = frame_top + frame.eval_on_selector(selector, "e => e.getBoundingClientRect().top")
    return bool(0 <= top < SCREEN[1] - 40)


def _focus_inside(frame: Any, selector: str) -> bool:
    return bool(
        frame.evaluate(
            "sel => { const a = document.activeElement; return !!a && !!a.closest(sel); }",
            selector,
        )
    )


def _step_editor(page: Any, frame: Any) -> Any:
    frame = _nav(page, frame, "Pathways")
    frame = _follow(page, frame, frame.get_by_role("link", name="Ponds", exact=True))
    return _follow(page, frame, frame.get_by_role("link", name="Pond step 1", exact=True))


def _lock_out_warning(page: Any, frame: Any) -> Any:
    frame = _step_editor(page, frame)
    frame.get_by_label("Part 1", exact=False).first.check()
    frame = _follow(page, frame, frame.get_by_role("button", name="Save step"))
    _settled(page, frame)
    assert "Not saved yet" in frame.inner_text("#locking-students")
    return frame


def _losing_mastery_warning(page: Any, frame: Any, code: str) -> Any:
    frame = _nav(page, frame, "Competencies")
    frame.fill("#new-code", code)
    frame.fill("#new-title", "Cell signalling")
    parent = frame.evaluate(
        "[...document.querySelectorAll('#new-parent option')]"
        ".find(o => o.text.startsWith('CELL')).value"
    )
    frame.select_option("#new-parent", parent)
    frame = _follow(page, frame, frame.get_by_role("button", name="Add competency"))
    _settled(page, frame)
    assert "Not saved yet" in frame.inner_text("#losing-mastery")
    return frame


def _correction_warning(keys: Keys, page: Any, frame: Any) -> Any:
    """A correction of the mastering student's evidence down to Developing: asked first."""
    url = urlsplit(frame.url)
    path = f"/mastery/evidence/{keys.mastering_evidence_id}"
    # From the page, as a link would: a copied address typed in does not open (no same-site
    # request), and the student page's evidence links are many clicks away.
    with frame.expect_navigation():
        frame.evaluate("u => { location.href = u; }", urlunsplit(url._replace(path=path)))
    frame = tool_frame(page)
    frame.select_option("#cor-points", label="Developing (2 points)")
    frame = _follow(page, frame, frame.get_by_role("button", name="Save correction"))
    _settled(page, frame)
    assert "Not saved yet" in frame.inner_text("#losing-mastery")
    return frame


# Before the tests that press Enter: those would save, without the fix, what these ask about.


def test_the_lock_out_warning_takes_focus_and_comes_into_view(
    keys: Keys, page_factory: Any
) -> None:
    page, frame = _launch(keys, page_factory, TEACHER.user_id)
    frame = _lock_out_warning(page, frame)
    # A keyboard or screen-reader user is taken to the warning, as to a refusal.
    assert _focus_inside(frame, "#locking-students"), frame.evaluate("document.activeElement.id")
    assert _on_screen(page, frame, "#locking-students")


def test_the_losing_mastery_warning_takes_focus_and_comes_into_view(
    keys: Keys, page_factory: Any
) -> None:
    page, frame = _launch(keys, page_factory, TEACHER.user_id)
    frame = _losing_mastery_warning(page, frame, "CELL.3")
    assert _focus_inside(frame, "#losing-mastery"), frame.evaluate("document.activeElement.id")
    assert _on_screen(page, frame, "#losing-mastery")


def test_the_correction_warning_takes_focus_and_enter_in_a_field_asks_again(
    keys: Keys, page_factory: Any
) -> None:
    page, frame = _launch(keys, page_factory, TEACHER.user_id)
    frame = _correction_warning(keys, page, frame)
    assert _focus_inside(frame, "#losing-mastery"), frame.evaluate("document.activeElement.id")
    assert _on_screen(page, frame, "#losing-mastery")
    # Enter in the date field is "Save correction" (asked again), never "Save it anyway".
    frame = _press_enter_in(page, frame, "#cor-date", "")
    assert "Not saved yet" in frame.inner_text("#losing-mastery")
    assert frame.locator("#cor-points option:checked").inner_text().startswith("Developing")
    names = frame.locator("form[action$='/correct'] button[type=submit]").all_inner_texts()
    assert names.index("Save correction") < names.index("Save it anyway"), names
    assert "Counts towards the level" in frame.inner_text("main dl")
    assert "4 points" in frame.inner_text("main dl")


def test_enter_in_a_field_after_the_lock_out_warning_asks_again(
    keys: Keys, page_factory: Any
) -> None:
    page, frame = _launch(keys, page_factory, TEACHER.user_id)
    frame = _lock_out_warning(page, frame)
    # The teacher fixes a typo in the title and presses Enter, as in any form: that is
    # "Save step" (asked again), never "Save and lock the step for them".
    frame = _press_enter_in(page, frame, "#step-title", " (typo fixed)")
    assert frame.locator("main .flash[role=status]").count() == 0  # "Your changes are saved."
    assert "Not saved yet" in frame.inner_text("#locking-students")
    assert frame.input_value("#step-title") == "Pond step 1 (typo fixed)"
    # The buttons read and tab in the order Enter uses: the ordinary save first.
    names = frame.locator("#details ~ form button[type=submit]").all_inner_texts()
    assert names[-2:] == ["Save step", "Save and lock the step for them"]


def test_enter_in_a_field_after_the_losing_mastery_warning_asks_again(
    keys: Keys, page_factory: Any
) -> None:
    page, frame = _launch(keys, page_factory, TEACHER.user_id)
    frame = _losing_mastery_warning(page, frame, "CELL.4")
    frame = _press_enter_in(page, frame, "#new-title", " and response")
    assert frame.locator("#losing-mastery").count() == 1, frame.inner_text("main .flash")
    assert frame.input_value("#new-title") == "Cell signalling and response"
    names = frame.locator("#new ~ form button[type=submit]").all_inner_texts()
    assert names[-2:] == ["Add competency", "Add it anyway"]


def _confirmation_where_focus_lands(page: Any, frame: Any, words: str) -> None:
    """The confirmation is in the LMS's window, next to the place focus is on, which it
    describes (so a screen reader says it with the place)."""
    _settled(page, frame)
    notice = frame.locator("main .flash[role=status]")
    assert notice.count() == 1
    assert words in notice.inner_text()
    assert _on_screen(page, frame, "main .flash[role=status]")
    described = frame.evaluate(
        "() => { const a = document.activeElement, n = document.querySelector('main .flash');"
        " const ids = (a && a.getAttribute('aria-describedby') || '').split(' ');"
        " const row = n.closest('tr');"
        " return {focus: a && a.id, described: !!n.id && ids.includes(n.id),"
        " next: n.nextElementSibling === a || n.parentElement === a"
        " || (!!row && row.nextElementSibling === a)}; }"
    )
    assert described == {**described, "described": True, "next": True}, described


def test_a_chosen_option_is_confirmed_at_its_step(keys: Keys, page_factory: Any) -> None:
    page, frame = _launch(keys, page_factory, CHOOSING)
    frame = _follow(page, frame, frame.get_by_role("link", name="Open Ponds"))
    step = frame.locator(f"#step-{keys.last_step_id}")
    frame = _follow(page, frame, step.get_by_role("button", name="Choose this option").first)
    _confirmation_where_focus_lands(page, frame, "Your choice is saved")
    assert frame.evaluate("document.activeElement.id") == f"step-{keys.last_step_id}"


def test_a_self_assessment_is_confirmed_at_its_competency(keys: Keys, page_factory: Any) -> None:
    page, frame = _launch(keys, page_factory, CHOOSING)
    frame = _nav(page, frame, "My progress")
    section = frame.locator("section.competency", has_text="FIELD")
    section.locator("summary", has_text="Rate yourself").click()
    frame = _follow(page, frame, section.get_by_role("button", name="Save my self-assessment"))
    _confirmation_where_focus_lands(page, frame, "self-assessment is saved")
    assert frame.evaluate("document.activeElement.id").startswith("competency-")


@pytest.mark.parametrize("width", [700, 390])
def test_a_competency_moved_low_in_the_table_is_confirmed_at_its_row(
    long_course: Demo, page_factory: Any, width: int
) -> None:
    """The confirmation went above the whole table and the page scrolled to it: the moved
    row, with focus, was screens below, out of sight."""
    page = page_factory(width, SCREEN[1])
    page.set_default_timeout(15_000)
    page.goto(long_course.course_url(LONG.context_id, **{"as": TEACHER.user_id}))
    frame = _nav(page, tool_frame(page), "Competencies")
    codes = frame.locator("tbody th[scope=row] strong").all_inner_texts()
    at = codes.index("L.29")  # each width's run moves it up once more
    codes[at - 1 : at + 1] = ["L.29", codes[at - 1]]
    row = frame.locator("tbody tr", has_text="L.29")
    frame = _follow(page, frame, row.get_by_role("button", name="Up"))
    _settled(page, frame)  # focus moves there once the LMS has sized the frame
    assert frame.evaluate("document.activeElement.tagName") == "TR"
    assert "L.29" in frame.evaluate("document.activeElement.textContent")
    assert _on_screen(page, frame, ":focus"), "the moved row is out of sight"
    _confirmation_where_focus_lands(page, frame, "The order is saved")
    # The notice's row took no place among the competencies'.
    assert frame.locator("tbody th[scope=row] strong").all_inner_texts() == codes
