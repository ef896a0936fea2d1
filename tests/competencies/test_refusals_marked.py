"""A refused competency names the field it is about as the other teacher forms do: the field
says it is invalid and is described by the message, and the message links to the field (the
competency forms marked the field but their message had no link to it)."""

from __future__ import annotations

from lti_app.competencies.services import create_competency
from lti_app.demo.browser import parse_forms
from tests.courses.frames import field_marks
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, post, unique, unit_of_work, url

__all__ = ["fresh_course"]
TEACHER = "user-t01"


def test_a_refused_new_competency_marks_and_links_its_field(fresh_course: FreshCourse) -> None:
    te = fresh_course.lti.launch(TEACHER)
    page = te.client.get(url(te.response, "/competencies/"))
    typed = {"code": "BIO;1", "title": "Cells and their parts"}
    add = next(f for f in parse_forms(page.text, str(page.url)) if "code" in f.fields)
    refused = post(te.client, add, typed)
    assert refused.status_code == 400
    assert "cannot contain" in refused.text
    assert field_marks(refused.text, "new-code") == (True, True, True)
    assert field_marks(refused.text, "new-title")[0] is False
    assert 'aria-describedby="error-summary new-code-hint"' in refused.text
    assert 'value="Cells and their parts"' in refused.text


def test_a_refused_competency_edit_marks_and_links_its_field(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    code = unique("MARK")
    with unit_of_work(database_url) as s:
        cid = create_competency(s, context_id=fc.context_id, code=code, title="Cells").id
    te = fc.lti.launch(TEACHER)
    page = te.client.get(url(te.response, f"/competencies/{cid}/edit"))
    refused = post(te.client, form(page, f"/{cid}/edit"), {"code": code, "title": "   "})
    assert refused.status_code == 400
    assert field_marks(refused.text, "edit-title") == (True, True, True)
    assert field_marks(refused.text, "edit-code")[0] is False
