"""Only the very same form sent again is a repeat: the same words sent from another page (one
shown before the first save, such as a tab left open) are new work and are stored; a repeat
that is skipped says so, and the bulk page counts only the students it recorded."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import ColumnElement, func, select

from lti_app.db import utcnow
from lti_app.demo.browser import HtmlForm
from lti_app.form_once import services as form_once_services
from lti_app.form_once.models import FORM_LIFE, SavedForm
from lti_app.form_once.services import first_save
from lti_app.learners.models import CheckIn
from lti_app.mastery.models import Evidence, EvidenceSource
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, unique, unit_of_work, url
from tests.test_form_once import TEACHER, _competency

__all__ = ["fresh_course"]
ALREADY_SAVED = "This form was already saved; nothing new was recorded."


def _show(client: httpx.Client, home: httpx.Response, path: str) -> httpx.Response:
    page = client.get(url(home, path))
    assert page.status_code == 200, page.text[:500]
    return page


def _send(client: httpx.Client, found: HtmlForm, values: dict[str, str]) -> httpx.Response:
    """Send a form as the browser would, and show the page it leads to."""
    sent = client.post(found.action, data={**found.fields, **values}, follow_redirects=True)
    assert sent.status_code == 200, sent.text[:1500]
    return sent


def _first_points(page: httpx.Response, select_id: str) -> str:
    found = re.search(r'<option value="([\d.]+)"', page.text.split(f'id="{select_id}"')[1])
    assert found
    return found.group(1)


def _count(database_url: str, *where: ColumnElement[bool]) -> int:
    with unit_of_work(database_url) as s:
        return s.scalar(select(func.count(Evidence.id)).where(*where)) or 0


def test_evidence_from_an_open_student_page_after_bulk_record_is_kept(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """The review's case: level 3 for the whole class from the bulk page, then the same level
    for one student from the student's page opened before: two observations, both counted."""
    fc = fresh_course
    competency_id = _competency(fc, database_url)
    home = fc.lti.launch(TEACHER)
    client = home.client
    student_page = _show(client, home.response, f"/course/students/{fc.student_id}")
    points = _first_points(student_page, "rec-points")
    bulk = _show(client, home.response, "/mastery/evidence/bulk")
    values = {"competency_id": str(competency_id), "points": points, "note": ""}
    _send(client, form(bulk, "/evidence/bulk"), {**values, "all": "on"})

    again = _send(client, form(student_page, "/evidence"), values)

    assert "Evidence recorded." in again.text
    assert ALREADY_SAVED not in again.text
    stored = _count(
        database_url, Evidence.competency_id == competency_id, Evidence.person_id == fc.student_id
    )
    assert stored == 2


def test_the_same_check_in_from_two_open_pages_is_kept_twice(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    home = fc.lti.launch(TEACHER)
    client = home.client
    path = f"/course/students/{fc.student_id}"
    first, second = _show(client, home.response, path), _show(client, home.response, path)
    note = "Talked about the next unit"
    values = {"note": note, "next_steps": ""}
    _send(client, form(first, "/check-ins"), values)

    again = _send(client, form(second, "/check-ins"), values)

    assert "The check-in is saved." in again.text
    with unit_of_work(database_url) as s:
        stored = s.scalar(
            select(func.count(CheckIn.id)).where(
                CheckIn.context_id == fc.context_id, CheckIn.note == note
            )
        )
    assert stored == 2


def _self_assessment_values(page: httpx.Response, competency_id: int) -> dict[str, str]:
    select_html = page.text.split(f'id="level-{competency_id}"')[1]
    level_id = re.findall(r'<option value="(\d+)"', select_html)[0]
    return {"competency_id": str(competency_id), "level_id": level_id, "note": "I can do it"}


def test_the_same_self_assessment_from_two_open_pages_is_kept_twice(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    competency_id = _competency(fc, database_url)
    home = fc.lti.launch("user-s01")
    client = home.client
    first, second = (_show(client, home.response, "/progress/") for _ in range(2))
    values = _self_assessment_values(first, competency_id)
    _send(client, form(first, "/progress/self-assessment"), values)

    again = _send(client, form(second, "/progress/self-assessment"), values)

    assert "your self-assessment is saved" in again.text
    source = Evidence.source == EvidenceSource.SELF_ASSESSMENT
    assert _count(database_url, Evidence.competency_id == competency_id, source) == 2


Sender = Callable[[FreshCourse, int, httpx.Client, httpx.Response], tuple[str, dict[str, str]]]


def _evidence_form(
    fc: FreshCourse, competency_id: int, client: httpx.Client, home: httpx.Response
) -> tuple[str, dict[str, str]]:
    page = _show(client, home, f"/course/students/{fc.student_id}")
    points = _first_points(page, "rec-points")
    return "/evidence", {"competency_id": str(competency_id), "points": points, "note": "Neat"}


def _check_in_form(
    fc: FreshCourse, competency_id: int, client: httpx.Client, home: httpx.Response
) -> tuple[str, dict[str, str]]:
    return "/check-ins", {"note": "Weekly talk", "next_steps": ""}


@pytest.mark.parametrize(
    ("path", "fill", "saved"),
    [
        ("/course/students/{student}", _evidence_form, "Evidence recorded."),
        ("/course/students/{student}", _check_in_form, "The check-in is saved."),
        ("/mastery/evidence/bulk", None, "Evidence recorded for"),
        ("/progress/", None, "your self-assessment is saved"),
    ],
    ids=["evidence", "check-in", "bulk", "self-assessment"],
)
def test_a_form_sent_again_says_nothing_new_was_recorded(
    fresh_course: FreshCourse,
    database_url: str,
    path: str,
    fill: Sender | None,
    saved: str,
) -> None:
    """Back after saving, then the same form sent again: the page says it stored nothing,
    instead of saying it recorded it."""
    fc = fresh_course
    competency_id = _competency(fc, database_url)
    sub = "user-s01" if path == "/progress/" else TEACHER
    home = fc.lti.launch(sub)
    client = home.client
    page = _show(client, home.response, path.format(student=fc.student_id))
    if path == "/progress/":
        action, values = "/progress/self-assessment", _self_assessment_values(page, competency_id)
    elif fill is None:
        points = _first_points(page, "bulk-points")
        action = "/evidence/bulk"
        values = {"competency_id": str(competency_id), "points": points, "note": "", "all": "on"}
    else:
        action, values = fill(fc, competency_id, client, home.response)
    found = form(page, action)
    first = _send(client, found, values)
    assert saved in first.text
    assert ALREADY_SAVED not in first.text

    again = _send(client, found, values)

    assert ALREADY_SAVED in again.text
    assert saved not in again.text


def test_the_bulk_page_counts_only_the_students_it_recorded(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """A form without its signed field (a page older than the launch) keeps the double-click
    window: the student who got the very observation seconds ago is skipped, and not counted."""
    fc = fresh_course
    competency_id = _competency(fc, database_url)
    fc.lti.launch("user-s02")
    home = fc.lti.launch(TEACHER)
    client = home.client
    student_page = _show(client, home.response, f"/course/students/{fc.student_id}")
    points = _first_points(student_page, "rec-points")
    values = {"competency_id": str(competency_id), "points": points, "note": ""}
    single = form(student_page, "/evidence")
    del single.fields["form_shown"]
    _send(client, single, values)
    bulk = _show(client, home.response, "/mastery/evidence/bulk")
    students = len(re.findall(r'name="student" value="\d+"', bulk.text))
    assert students >= 2
    bulk_form = form(bulk, "/evidence/bulk")
    del bulk_form.fields["form_shown"]

    done = _send(client, bulk_form, {**values, "all": "on"})

    recorded = _count(database_url, Evidence.competency_id == competency_id) - 1
    assert recorded == students - 1
    assert f"Evidence recorded for {recorded} student(s)." in done.text


def test_a_refused_send_leaves_its_form_usable(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """A form whose save was refused (a level off the scale) stores when sent again fixed."""
    fc = fresh_course
    competency_id = _competency(fc, database_url)
    home = fc.lti.launch(TEACHER)
    client = home.client
    page = _show(client, home.response, f"/course/students/{fc.student_id}")
    found = form(page, "/evidence")
    values = {"competency_id": str(competency_id), "points": "999", "note": ""}
    refused = client.post(found.action, data={**found.fields, **values})
    assert refused.status_code == 400

    fixed = _send(client, found, {**values, "points": _first_points(page, "rec-points")})

    assert "Evidence recorded." in fixed.text
    assert _count(database_url, Evidence.competency_id == competency_id) == 1


def test_a_save_drops_marks_no_form_can_still_match(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(form_once_services, "PURGE_ONE_IN", 1)  # this save purges
    old, kept, new = unique("old"), unique("kept"), unique("new")
    with unit_of_work(database_url) as s:
        s.add(SavedForm(nonce=old, saved_at=utcnow() - FORM_LIFE - timedelta(minutes=1)))
        s.add(SavedForm(nonce=kept, saved_at=utcnow() - FORM_LIFE + timedelta(minutes=5)))
    with unit_of_work(database_url) as s:
        assert first_save(s, new)
        assert not first_save(s, new)
    with unit_of_work(database_url) as s:
        left = set(s.scalars(select(SavedForm.nonce).where(SavedForm.nonce.in_([old, kept]))))
    assert left == {kept}
