"""Hebrew and Arabic that teachers and students write read right to left on the student's
pathway page, in Chromium at the width of an LMS frame."""

from __future__ import annotations

from typing import Any

import pytest

from lti_app.pathways import options, reviewing
from lti_app.pathways.choices import choose_option, start_choice, submit_choice
from lti_app.pathways.options import OptionInput
from tests.insights import conftest as insights_fixtures
from tests.insights.conftest import FreshCourse
from tests.pathways.test_views import Built, build_pathway
from tests.progress.pages import link, unit_of_work

fresh_course = insights_fixtures.fresh_course

FEEDBACK = "כל הכבוד! תקן את סעיף 2 ושלח שוב."
NOTE = "أنهيت التجربة، انظر الصور."
DESCRIPTION = "اقرأ الفصل 3، ثم أجب عن الأسئلة."

# The direction each element holding the text is shown in: a form field with dir="auto" has
# unicode-bidi: plaintext (direction worked out per line), which reads as right to left here.
DIRECTIONS = """([feedback, note, description]) => {
    const out = {};
    const how = (el) => { const cs = getComputedStyle(el);
        return cs.unicodeBidi === 'plaintext' ? 'rtl' : cs.direction; };
    for (const el of document.querySelectorAll('p, textarea')) {
        const text = el.value || el.textContent;
        if (text.includes(feedback)) out.feedback = how(el);
        if (text.includes(description)) out.description = how(el);
        if (text.includes(note)) out[el.tagName.toLowerCase() + '_note'] = how(el);
    }
    return out;
}"""


@pytest.fixture
def returned_with_hebrew_feedback(fresh_course: FreshCourse, database_url: str) -> Built:
    """An Arabic hand-in the teacher returned with a Hebrew note, and an Arabic option whose
    description the teacher marked right to left."""
    built = build_pathway(database_url, fresh_course.lti.lms)
    sid = fresh_course.student_id
    with unit_of_work(database_url) as s:
        ch = choose_option(
            s, context_id=built.context_id, person_id=sid, option_id=built.animals_option_id
        )
        start_choice(s, context_id=built.context_id, person_id=sid, choice_id=ch.id)
        submit_choice(s, context_id=built.context_id, person_id=sid, choice_id=ch.id, note=NOTE)
        options.create_option(
            s,
            context_id=built.context_id,
            step_id=built.open_step_id,
            data=OptionInput(title="قراءة", description=f'<p dir="rtl">{DESCRIPTION}</p>'),
        )
        reviewing.return_choices(
            s,
            context_id=built.context_id,
            choice_ids=[ch.id],
            decided_by_id=fresh_course.teacher_id,
            note=FEEDBACK,
        )
    return built


def test_hebrew_and_arabic_notes_read_right_to_left_on_the_students_page(
    chromium: Any, fresh_course: FreshCourse, returned_with_hebrew_feedback: Built
) -> None:
    home = fresh_course.lti.launch("user-s01")
    page_url = link(home.response, f"/pathways/{returned_with_hebrew_feedback.pathway_id}?")
    html_text = home.client.get(page_url).text
    assert FEEDBACK in html_text
    assert NOTE in html_text
    assert f'<p dir="rtl">{DESCRIPTION}</p>' in html_text, "the teacher's own direction is lost"

    page = chromium.new_page(viewport={"width": 700, "height": 900})
    try:
        page.set_content(html_text)
        directions = page.evaluate(DIRECTIONS, [FEEDBACK, NOTE, DESCRIPTION])
    finally:
        page.close()
    # Right to left: the "!" and "." at the left end of the line, as a Hebrew reader expects.
    assert directions == {
        "feedback": "rtl",
        "p_note": "rtl",
        "textarea_note": "rtl",
        "description": "rtl",
    }
