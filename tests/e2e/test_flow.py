"""The issue's flow in a real browser, inside the LMS's cross-site frame: a student chooses an
option that needs approval, the teacher approves it, the student hands in the work, the teacher
records evidence, and the student sees the step done and the next one unlocked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Demo, tool_frame
from tests.e2e.test_pages import fit_frame, frame_screenshot, seed

STUDENT = "user-s24"
"""Tomás Ó Súilleabháin: no evidence and no choices in the demo content, and no other test
launches as him."""
STUDENT_NAME = "Tomás Ó Súilleabháin"
OPTION = "Build a 3D cell model"
"""Needs the teacher's approval."""


@dataclass(frozen=True)
class Browser:
    demo: Demo
    launch_params: dict[str, str]


@pytest.fixture(
    scope="module",
    params=["chromium", "safari-on-canvas"],
)
def seeded(request: pytest.FixtureRequest, database_url: str) -> Browser:
    """Chromium, which keeps partitioned cookies in the LMS's frame; and Safari before 26.2,
    which keeps none there, on an LMS that offers platform storage (Canvas): every page and form
    of the flow must then work on the launch token alone."""
    if request.param == "chromium":
        demo: Demo = request.getfixturevalue("demo")
        params = {}
    else:
        demo = request.getfixturevalue("demo_like_safari")
        params = {"storage": "1"}
    seed(demo, database_url)
    return Browser(demo, params)


def launch(page: Any, browser: Browser, user: str) -> Any:
    page.set_default_timeout(10_000)
    page.goto(browser.demo.course_url(**{"as": user}, **browser.launch_params))
    return tool_frame(page)


def shoot(page: Any, frame: Any, name: str) -> None:
    fit_frame(page, frame, 700)
    frame_screenshot(page, name)


def step(frame: Any, title: str) -> Any:
    return frame.locator("section.step").filter(
        has=frame.get_by_role("heading", level=2, name=title)
    )


def test_choose_approve_hand_in_record_and_the_next_step_opens(
    seeded: Browser, page_factory: Any
) -> None:
    from playwright.sync_api import expect

    demo = seeded
    student_page, teacher_page = page_factory(), page_factory()

    # The student picks an option that needs approval; the next step is still locked.
    frame = launch(student_page, demo, STUDENT)
    frame.get_by_role("link", name="Open Cells and life pathway").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("Cells and life")
    expect(step(frame, "Look through the microscope").locator(".lock-state")).to_contain_text(
        "Locked."
    )
    first = step(frame, "Meet the cell")
    # The hidden part of the name is a block, so the name reads "Choose this option : ...".
    first.get_by_role("button", name=re.compile(rf"^Choose this option\W+{OPTION}$")).click()
    expect(frame.get_by_role("status")).to_contain_text("Your choice is saved")
    expect(first).to_contain_text("Chosen: waiting for your teacher's approval")
    expect(first.get_by_role("button", name="Hand in")).to_have_count(0)
    shoot(student_page, frame, "flow-1-student-chose-700")

    # The teacher approves it from the overview.
    frame = launch(teacher_page, demo, "user-t01")
    frame.get_by_role(
        "checkbox", name=f"Select: \u2068{STUDENT_NAME}\u2069, \u2068{OPTION}\u2069"
    ).check()
    frame.get_by_role("button", name="Approve", exact=True).click()
    expect(frame.get_by_role("status")).to_have_text("Approved 1 choice(s).")
    expect(
        frame.get_by_role(
            "checkbox", name=f"Select: \u2068{STUDENT_NAME}\u2069, \u2068{OPTION}\u2069"
        )
    ).to_have_count(0)

    # The student hands in the work.
    frame = launch(student_page, demo, STUDENT)
    frame.get_by_role("link", name="Open Cells and life pathway").click()
    first = step(frame, "Meet the cell")
    expect(first).to_contain_text("Approved by your teacher")
    first.get_by_label("A note for your teacher").fill("My model is made of clay and beads.")
    first.get_by_role("button", name="Hand in").click()
    expect(frame.get_by_role("status")).to_contain_text("Handed in")
    expect(step(frame, "Meet the cell")).to_contain_text("Handed in: waiting for your teacher")

    # The teacher records evidence on the student's page; it closes the handed-in work.
    frame = launch(teacher_page, demo, "user-t01")
    row = (
        frame.get_by_role("row")
        .filter(has_text="Review of submitted work")
        .filter(has_text=STUDENT_NAME)
    )
    expect(row).to_contain_text("My model is made of clay and beads.")
    frame.get_by_role("link", name=STUDENT_NAME).first.click()
    expect(frame.get_by_role("heading", level=1)).to_have_text(STUDENT_NAME)
    frame.get_by_label("Competency", exact=True).select_option(label="CELL.1 · Cell structure")
    frame.get_by_label("Level", exact=True).select_option(label="Proficient (3 points) — mastery")
    frame.get_by_label("Note (shown to the student and in the family report)", exact=True).fill(
        "Clear model; every organelle labelled and explained."
    )
    frame.get_by_role("button", name="Record evidence").click()
    expect(frame.get_by_role("status")).to_have_text(
        "Evidence recorded. This also closed 1 hand-in(s) by this student on "
        "\u2068CELL.1 · Cell structure\u2069, now marked done: one level per competency."
    )
    expect(frame.locator("#choices + .table-wrap")).to_contain_text("Done")
    shoot(teacher_page, frame, "flow-2-teacher-recorded-700")

    # The student sees the step done and the next one open.
    frame = launch(student_page, demo, STUDENT)
    summary = frame.locator(".pathway-summary").filter(has_text="Cells and life")
    expect(summary).to_contain_text("1 of 4 steps done")
    frame.get_by_role("link", name="Open Cells and life pathway").click()
    expect(step(frame, "Meet the cell")).to_contain_text("Status: Done")
    second = step(frame, "Look through the microscope")
    expect(second.locator(".lock-state")).to_contain_text("Open.")
    expect(second.get_by_role("button", name=re.compile("^Choose this option"))).to_have_count(3)
    shoot(student_page, frame, "flow-3-student-next-step-open-700")
