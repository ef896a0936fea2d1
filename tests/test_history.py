"""A page that answers a form (a refused form shown again with its errors) gives frame.js the GET
address of its page for the browser's history: Back to it later opens that page, not Chromium's
"Confirm Form Resubmission" in the LMS frame."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx

from lti_app.competencies.services import create_competency
from lti_app.demo.browser import parse_forms
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, unit_of_work, url

__all__ = ["fresh_course"]


def _history_url(page: httpx.Response) -> tuple[str, dict[str, list[str]]] | None:
    found = re.search(r'<body[^>]* data-history-url="([^"]+)"', page.text)
    if found is None:
        return None
    address = urlsplit(html.unescape(found.group(1)))
    return address.path, parse_qs(address.query)


def test_a_refused_check_in_keeps_the_students_page_in_the_history(
    fresh_course: FreshCourse,
) -> None:
    home = fresh_course.lti.launch("user-t01")
    page = home.client.get(url(home.response, f"/course/students/{fresh_course.student_id}"))
    found = form(page, "/check-ins")
    refused = home.client.post(
        found.action, data={**found.fields, "held_on": "2099-01-01", "note": "Lab report"}
    )
    assert refused.status_code == 400
    history = _history_url(refused)
    assert history is not None
    path, query = history
    assert path == f"/course/students/{fresh_course.student_id}"
    assert query["lt"]
    assert "notice" not in query


def test_a_refused_self_assessment_keeps_my_progress_in_the_history(
    fresh_course: FreshCourse, database_url: str
) -> None:
    with unit_of_work(database_url) as s:
        create_competency(s, context_id=fresh_course.context_id, code="H.1", title="Sources")
    home = fresh_course.lti.launch("user-s01")
    page = home.client.get(url(home.response, "/progress/"))
    found = form(page, "/progress/self-assessment")
    refused = home.client.post(found.action, data={**found.fields, "level_id": "none"})
    assert refused.status_code == 400
    history = _history_url(refused)
    assert history is not None
    assert history[0] == "/progress/"


def test_any_other_refused_form_keeps_the_page_it_was_sent_from(
    fresh_course: FreshCourse,
) -> None:
    """The pathway editor refusing an empty title: the editor, as the browser's Referer names
    it (with a fresh token; not its success message)."""
    home = fresh_course.lti.launch("user-t01")
    manage = home.client.get(url(home.response, "/pathways/manage"))
    created = home.client.post(
        str(manage.url.join("/pathways/manage")),
        data={**form(manage, "/pathways/manage").fields, "title": "Forces", "description": ""},
    )
    assert created.status_code in (302, 303)
    editor_url = str(manage.url.join(created.headers["location"]))
    editor = home.client.get(editor_url)
    found = next(f for f in parse_forms(editor.text) if "shown" in f.fields and "lt" in f.fields)
    refused = home.client.post(
        str(editor.url.join(found.action)),
        data={**found.fields, "title": "", "description": "More"},
        headers={"Referer": editor_url},
    )
    assert refused.status_code == 400, refused.text[:1000]
    history = _history_url(refused)
    assert history is not None
    assert history[0] == urlsplit(editor_url).path
    assert "notice" not in history[1]
    assert history[1]["lt"]
    # A Referer from elsewhere (the LMS) names no page of ours.
    elsewhere = home.client.post(
        str(editor.url.join(found.action)),
        data={**found.fields, "title": "", "description": "More"},
        headers={"Referer": "https://lms.example/courses/1"},
    )
    assert elsewhere.status_code == 400
    assert _history_url(elsewhere) is None
