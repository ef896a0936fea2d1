"""An add form (a check-in, evidence, a self-assessment) sent again from the very same page —
Back after saving, the browser giving the page back with its text, Add pressed again minutes
later — stores nothing new; a page shown after the save still adds the same words again."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from lti_app.competencies.services import create_competency
from lti_app.courses import student_views
from lti_app.learners.models import CheckIn
from lti_app.mastery import services as mastery_services
from lti_app.mastery.models import Evidence, EvidenceSource
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, unique, unit_of_work, url

__all__ = ["fresh_course"]
TEACHER = "user-t01"


@pytest.fixture
def window_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The double-click window (30 seconds) is over by the time Add is pressed again."""
    monkeypatch.setattr(mastery_services, "DOUBLE_SUBMIT", timedelta(0))
    # Where a view read the window itself (before add forms said when they were shown).
    monkeypatch.setattr(student_views, "DOUBLE_SUBMIT", timedelta(0), raising=False)


def _competency(fc: FreshCourse, database_url: str) -> int:
    with unit_of_work(database_url) as s:
        return create_competency(
            s, context_id=fc.context_id, code=unique("ONCE"), title="Lab reports"
        ).id


Page = tuple[httpx.Client, Callable[[], httpx.Response]]


def _sent_twice_then_from_a_new_page(page: Page, action: str, values: dict[str, str]) -> int:
    """Send the form of one page twice, then the same words from the page shown again."""
    client, show = page
    found = form(show(), action)
    fields = {**found.fields, **values}
    for _ in range(2):
        sent = client.post(found.action, data=fields)
        assert sent.status_code in (302, 303), sent.text[:1500]
    again = form(show(), action)
    return client.post(again.action, data={**again.fields, **values}).status_code


def _page(fc: FreshCourse, sub: str, path: str) -> Page:
    home = fc.lti.launch(sub)

    def show() -> httpx.Response:
        response = home.client.get(url(home.response, path))
        assert response.status_code == 200
        return response

    return home.client, show


def _teacher_page(fc: FreshCourse) -> Page:
    return _page(fc, TEACHER, f"/course/students/{fc.student_id}")


@pytest.mark.usefixtures("window_passed")
def test_a_check_in_sent_again_from_the_same_page_is_stored_once(
    fresh_course: FreshCourse, database_url: str
) -> None:
    note = "We agreed on three lab reports by Friday"
    status = _sent_twice_then_from_a_new_page(
        _teacher_page(fresh_course), "/check-ins", {"note": note, "next_steps": ""}
    )
    assert status in (302, 303)
    with unit_of_work(database_url) as s:
        stored = s.scalar(
            select(func.count(CheckIn.id)).where(
                CheckIn.context_id == fresh_course.context_id, CheckIn.note == note
            )
        )
    assert stored == 2  # once from the first page, once from the page shown after it


@pytest.mark.usefixtures("window_passed")
def test_evidence_sent_again_from_the_same_page_is_stored_once(
    fresh_course: FreshCourse, database_url: str
) -> None:
    competency_id = _competency(fresh_course, database_url)
    page = _teacher_page(fresh_course)
    points = re.findall(r'<option value="([\d.]+)"', page[1]().text.split('id="rec-points"')[1])[0]
    values = {"competency_id": str(competency_id), "points": points, "note": "Clear lab report"}
    status = _sent_twice_then_from_a_new_page(page, "/evidence", values)
    assert status in (302, 303)
    with unit_of_work(database_url) as s:
        stored = s.scalar(
            select(func.count(Evidence.id)).where(Evidence.competency_id == competency_id)
        )
    assert stored == 2


@pytest.mark.usefixtures("window_passed")
def test_a_self_assessment_sent_again_from_the_same_page_is_stored_once(
    fresh_course: FreshCourse, database_url: str
) -> None:
    competency_id = _competency(fresh_course, database_url)
    page = _page(fresh_course, "user-s01", "/progress/")
    select_html = page[1]().text.split(f'id="level-{competency_id}"')[1]
    level_id = re.findall(r'<option value="(\d+)"', select_html)[0]
    values = {"competency_id": str(competency_id), "level_id": level_id, "note": "I can do it"}
    status = _sent_twice_then_from_a_new_page(page, "/progress/self-assessment", values)
    assert status in (302, 303)
    with unit_of_work(database_url) as s:
        stored = s.scalar(
            select(func.count(Evidence.id)).where(
                Evidence.competency_id == competency_id,
                Evidence.source == EvidenceSource.SELF_ASSESSMENT,
            )
        )
    assert stored == 2


def test_add_forms_are_not_filled_in_again_by_the_browser_on_back(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """Back to the page after saving gave the saved words back in "Add a check-in"."""
    _competency(fresh_course, database_url)
    page = _teacher_page(fresh_course)[1]().text
    for action in ("/check-ins", "/evidence"):
        tag = re.search(rf'<form [^>]*action="[^"]*{action}"[^>]*>', page)
        assert tag, action
        assert 'autocomplete="off"' in tag.group(0), tag.group(0)
