"""An add-goal form stores its goal once, however often the very same form is sent: Back after
adding, the goal marked met meanwhile, then Add again used to give the student the goal twice
and say it was added. Another page's form (a second tab) still adds its goal."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from lti_app.demo.browser import HtmlForm
from lti_app.learners.models import Goal, GoalStatus
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, unique, unit_of_work, url
from tests.test_form_once import TEACHER

__all__ = ["fresh_course"]
ALREADY_SAVED = "This form was already saved; nothing new was recorded."
STUDENT = "user-s01"

# (who, page, action of its add-goal form, what the page says once a goal is added)
PAGES = {
    "student": (STUDENT, "/profile/", "/profile/goals?", "Your goal is added."),
    "teacher-editor": (
        TEACHER,
        "/profile/students/{student}",
        "/profile/students/{student}/goals",
        "The goal is added.",
    ),
    "teacher-course-page": (
        TEACHER,
        "/course/students/{student}",
        "/course/students/{student}/goals",
        "The goal is saved.",
    ),
}


def _send(client: httpx.Client, found: HtmlForm, values: dict[str, str]) -> httpx.Response:
    """Send a form as the browser would, and show the page it leads to."""
    sent = client.post(found.action, data={**found.fields, **values}, follow_redirects=True)
    assert sent.status_code == 200, sent.text[:1500]
    return sent


def _goals(database_url: str, context_id: int, text: str) -> list[Goal]:
    with unit_of_work(database_url) as s:
        query = select(Goal).where(Goal.context_id == context_id, Goal.text == text)
        found = list(s.scalars(query))
        s.expunge_all()
        return found


def _add_goal_form(fc: FreshCourse, page_name: str) -> tuple[httpx.Client, httpx.Response, str]:
    sub, path, action, _ = PAGES[page_name]
    home = fc.lti.launch(sub)
    page = home.client.get(url(home.response, path.format(student=fc.student_id)))
    assert page.status_code == 200, page.text[:1500]
    return home.client, page, action.format(student=fc.student_id)


@pytest.mark.parametrize("page_name", list(PAGES))
def test_an_add_goal_form_sent_again_adds_nothing_and_says_so(
    fresh_course: FreshCourse, database_url: str, page_name: str
) -> None:
    fc = fresh_course
    client, page, action = _add_goal_form(fc, page_name)
    found = form(page, action)
    text = unique("Read two chapters a week ")
    first = _send(client, found, {"text": text, "target_date": ""})
    added = PAGES[page_name][3]
    assert added in first.text
    # Met meanwhile: no longer an open goal the same words would find.
    with unit_of_work(database_url) as s:
        goal = s.scalars(select(Goal).where(Goal.text == text)).one()
        goal.status = GoalStatus.MET

    again = _send(client, found, {"text": text, "target_date": ""})

    assert ALREADY_SAVED in again.text
    assert added not in again.text
    assert len(_goals(database_url, fc.context_id, text)) == 1


@pytest.mark.parametrize("page_name", list(PAGES))
def test_a_goal_from_another_open_page_is_added(
    fresh_course: FreshCourse, database_url: str, page_name: str
) -> None:
    fc = fresh_course
    client, first_page, action = _add_goal_form(fc, page_name)
    second_page = client.get(first_page.url)
    first_text, second_text = unique("Practise lab safety "), unique("Ask one question a day ")
    _send(client, form(first_page, action), {"text": first_text, "target_date": ""})

    second = _send(client, form(second_page, action), {"text": second_text, "target_date": ""})

    assert PAGES[page_name][3] in second.text
    assert ALREADY_SAVED not in second.text
    assert len(_goals(database_url, fc.context_id, second_text)) == 1


def test_a_refused_goal_form_fixed_and_sent_again_is_added(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """The refusal takes its mark back with it: the same form, fixed, still saves."""
    fc = fresh_course
    client, page, action = _add_goal_form(fc, "student")
    found = form(page, action)
    text = unique("Finish the osmosis lab ")
    refused = client.post(found.action, data={**found.fields, "text": text, "target_date": "soon"})
    assert refused.status_code == 400

    fixed = _send(client, found, {"text": text, "target_date": ""})

    assert "Your goal is added." in fixed.text
    assert len(_goals(database_url, fc.context_id, text)) == 1
