"""The class dashboard in real headless Chromium inside the LMS frame: 700 px (grid with
sticky headers, keyboard moves between cells) and 390 px (a list per student), axe clean."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.tool.models import Context, Membership, Person, Platform
from tests.e2e.conftest import Demo, screenshot, serious_axe_violations, tool_frame

_seeded: set[str] = set()


def _seed_class(demo: Demo, students: int = 60, competencies: int = 24) -> None:
    """A bigger Biology 9 than the demo's launches make: students and levels on the grid."""
    if demo.tool_url in _seeded:
        return
    db = Database(demo.settings.effective_database_url)
    rng = random.Random(7)
    with db.begin() as s:
        config = demo.lms.platform.config
        platform_id = s.scalar(
            select(Platform.id).where(
                Platform.issuer == config.issuer, Platform.client_id == config.client_id
            )
        )
        context = s.scalars(
            select(Context).where(
                Context.platform_id == platform_id, Context.context_id == "course-bio9"
            )
        ).first()
        assert context is not None
        teacher = s.scalars(
            select(Person).where(Person.platform_id == platform_id, Person.sub == "user-t01")
        ).first()
        assert teacher is not None
        people = [
            Person(
                platform_id=context.platform_id,
                sub=f"grid-{uuid.uuid4().hex[:8]}",
                given_name=f"Learner{i:02d}",
                family_name=f"Grid{i:02d}",
            )
            for i in range(students)
        ]
        s.add_all(people)
        s.flush()
        s.add_all(
            Membership(context_id=context.id, person_id=p.id, is_learner=True) for p in people
        )
        now = datetime.now(UTC)
        for i in range(competencies):
            comp = create_competency(
                s, context_id=context.id, code=f"G{i + 1}", title=f"Grid competency {i + 1}"
            )
            by_points: dict[int, list[int]] = {}
            for p in people:
                if rng.random() < 0.85:
                    by_points.setdefault(rng.randint(1, 4), []).append(p.id)
            for points, ids in by_points.items():
                record_evidence(
                    s,
                    context_id=context.id,
                    competency_id=comp.id,
                    student_ids=ids,
                    points=Decimal(points),
                    source=EvidenceSource.TEACHER,
                    note="",
                    recorded_by_id=teacher.id,
                    observed_at=now - timedelta(days=rng.randint(1, 40)),
                )
    db.dispose()
    _seeded.add(demo.tool_url)


def _open_dashboard(demo: Demo, page_factory: Any, width: int) -> Any:
    page = page_factory(width=width)
    page.goto(demo.course_url(**{"as": "user-t01"}))
    frame = tool_frame(page)
    _seed_class(demo)
    frame.click("nav a:has-text('Dashboard')")
    frame.wait_for_selector("main h1:has-text('Class dashboard')")
    frame.wait_for_selector("table.grid tbody button")
    return page, frame


def test_dashboard_grid_at_700px_is_keyboard_navigable(demo: Demo, page_factory: Any) -> None:
    page, frame = _open_dashboard(demo, page_factory, 700)
    assert serious_axe_violations(frame) == []
    position = frame.eval_on_selector("table.grid thead th", "th => getComputedStyle(th).position")
    assert position == "sticky"
    if True:
        # One tab stop for the grid; the arrow keys move between the cells.
        first = frame.query_selector("table.grid tbody button")
        first.focus()
        frame.press("table.grid tbody button >> nth=0", "ArrowRight")
        focused = frame.evaluate("document.activeElement.value")
        assert focused != first.get_attribute("value")
        assert frame.evaluate("document.activeElement.tabIndex") == 0
        # The page itself never scrolls sideways: the grid scrolls inside its box.
        assert (
            frame.evaluate("document.documentElement.scrollWidth")
            <= frame.evaluate("document.documentElement.clientWidth") + 1
        )
    screenshot(page, "dashboard-700")


@pytest.mark.parametrize("path", ["Needs attention", "Groups", "Family reports"])
def test_other_teacher_pages_are_accessible(demo: Demo, page_factory: Any, path: str) -> None:
    page = page_factory(width=700)
    page.goto(demo.course_url(**{"as": "user-t01"}))
    frame = tool_frame(page)
    with frame.expect_navigation():
        frame.click(f"nav a:has-text('{path}')")
    frame.wait_for_selector("main h1")
    assert serious_axe_violations(frame) == []


def test_dashboard_on_a_phone_is_a_list_per_student(demo: Demo, page_factory: Any) -> None:
    page, frame = _open_dashboard(demo, page_factory, 390)
    page.set_viewport_size({"width": 390, "height": 900})
    assert serious_axe_violations(frame) == []
    if True:
        assert (
            frame.eval_on_selector("table.grid thead", "t => getComputedStyle(t).display") == "none"
        )
        assert frame.eval_on_selector("table.grid tr", "t => getComputedStyle(t).display") == "flex"
    assert (
        frame.evaluate("document.documentElement.scrollWidth")
        <= frame.evaluate("document.documentElement.clientWidth") + 1
    )
    screenshot(page, "dashboard-390")
