"""A refused goal names the field it is about, as the other forms do: the field says it is
invalid and is described by the message, and the message links to it."""

from __future__ import annotations

import re

import pytest

from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, post, url

__all__ = ["fresh_course"]


def _marks(html: str, field_id: str) -> tuple[bool, bool, bool]:
    """(aria-invalid, described by the error, linked from the error) of the field."""
    tag = re.search(rf'<(?:textarea|input|select) id="{field_id}"[^>]*>', html)
    assert tag is not None, field_id
    summary = re.search(r'<div[^>]*id="error-summary".*?</div>', html, re.S)
    assert summary is not None
    return (
        'aria-invalid="true"' in tag.group(0),
        'aria-describedby="error-summary"' in tag.group(0),
        f'href="#{field_id}"' in summary.group(0),
    )


@pytest.mark.parametrize(
    ("typed", "field"),
    [
        ({"text": "   "}, "new-goal-text"),
        ({"text": "Read more", "target_date": "next June"}, "new-goal-date"),
    ],
)
def test_a_refused_new_goal_marks_and_links_its_field(
    fresh_course: FreshCourse, typed: dict[str, str], field: str
) -> None:
    st = fresh_course.lti.launch("user-s01")
    page = st.client.get(url(st.response, "/profile/"))
    refused = post(st.client, form(page, "/profile/goals?"), typed)
    assert refused.status_code == 400
    assert _marks(refused.text, field) == (True, True, True)
    others = {"new-goal-text", "new-goal-date"} - {field}
    assert [_marks(refused.text, f)[0] for f in others] == [False]


def test_a_refused_goal_change_marks_and_links_its_field(fresh_course: FreshCourse) -> None:
    st = fresh_course.lti.launch("user-s01")
    page = st.client.get(url(st.response, "/profile/"))
    post(st.client, form(page, "/profile/goals?"), {"text": "Read more"})
    page = st.client.get(url(st.response, "/profile/"))
    goal_id = re.search(r'id="goal-(\d+)"', page.text)
    assert goal_id is not None
    action = f"/profile/goals/{goal_id.group(1)}?"
    refused = post(st.client, form(page, action), {"text": "Read more", "status": "finished"})
    assert refused.status_code == 400
    assert _marks(refused.text, f"goal-{goal_id.group(1)}-status") == (True, True, True)


def test_a_refused_goal_on_the_teachers_profile_editor_is_marked_and_kept(
    fresh_course: FreshCourse,
) -> None:
    """The teacher's editor marks the field as the student's page and teacher forms do, and
    keeps what was typed."""
    fc = fresh_course
    te = fc.lti.launch("user-t01")
    page = te.client.get(url(te.response, f"/profile/students/{fc.student_id}"))
    typed = {"text": "Lab safety quiz", "target_date": "0026-05-01"}
    refused = post(te.client, form(page, f"/profile/students/{fc.student_id}/goals"), typed)
    assert refused.status_code == 400
    assert _marks(refused.text, "new-goal-date") == (True, True, True)
    assert _marks(refused.text, "new-goal-text")[0] is False
    assert ">Lab safety quiz</textarea>" in refused.text
    assert 'value="0026-05-01"' in refused.text
