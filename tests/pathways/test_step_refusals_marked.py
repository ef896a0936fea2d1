"""A refused step names the field it is about as the other teacher forms do: the competency
picked is invalid, described by the message (it was not) and linked from it."""

from __future__ import annotations

import re

from lti_app.competencies.services import create_competency
from lti_app.demo.browser import parse_forms
from tests.courses.frames import field_marks
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import post, unique, unit_of_work, url

__all__ = ["fresh_course"]
TEACHER = "user-t01"


def test_a_step_on_a_parent_competency_is_refused_with_its_field_marked(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """A sub-competency added in another tab makes the competency picked a parent."""
    fc = fresh_course
    code = unique("STEP")
    with unit_of_work(database_url) as s:
        parent = create_competency(s, context_id=fc.context_id, code=code, title="Energy").id
    te = fc.lti.launch(TEACHER)
    manage = te.client.get(url(te.response, "/pathways/manage"))
    new_pathway = next(f for f in parse_forms(manage.text, str(manage.url)) if "title" in f.fields)
    page = post(te.client, new_pathway, {"title": unique("Energy unit "), "description": ""})
    with unit_of_work(database_url) as s:
        create_competency(
            s, context_id=fc.context_id, code=code + ".1", title="Heat", parent_id=parent
        )
    step_form = next(f for f in parse_forms(page.text, str(page.url)) if "/steps" in f.action)
    typed = {"title": "Measure heat", "competency_id": str(parent)}
    refused = post(te.client, step_form, typed)
    assert refused.status_code == 400, refused.text[:1500]
    assert field_marks(refused.text, "new-step-competency") == (True, True, True)
    described = re.search(r'id="new-step-competency"[^>]*aria-describedby="([^"]*)"', refused.text)
    assert described is not None
    assert described.group(1).split() == ["error-summary", "new-step-competency-hint"]
    assert 'value="Measure heat"' in refused.text
