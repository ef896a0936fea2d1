"""A refused self-assessment comes back as the student left it: their rating open, the level
they picked still picked and the words they wrote still there."""

from __future__ import annotations

import re

from lti_app.competencies.services import create_competency
from tests.conftest import LtiActions
from tests.progress.pages import context_id, form, post, unique, unit_of_work, url

STUDENT = "user-s03"


def test_a_refused_self_assessment_keeps_the_level_and_note(
    lti: LtiActions, database_url: str
) -> None:
    lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        ctx = context_id(s, lti.lms)
        comp = create_competency(s, context_id=ctx, code=unique("SR"), title="Cells").id
    home = lti.launch(STUDENT)
    page = home.client.get(url(home.response, "/progress/"))
    menu = page.text.split(f'id="level-{comp}"', 1)[1].split("</select>", 1)[0]
    developing = re.search(r'<option value="(\d+)"[^>]*>Developing<', menu)
    assert developing is not None
    refused = post(
        home.client,
        form(page, "/progress/self-assessment"),
        {"competency_id": str(comp), "level_id": developing.group(1), "note": "n" * 2001},
    )
    assert refused.status_code == 400
    assert "Keep the note under 2000 characters" in refused.text
    section = refused.text.split(f'id="competency-{comp}"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"<details[^>]*\bopen\b", section)
    assert re.findall(r"<option[^>]*selected[^>]*>([^<]*)<", section) == ["Developing"]
    assert "n" * 2001 + "</textarea>" in section
    assert re.search(rf'id="self-note-{comp}"[^>]*aria-invalid="true"', section)
    assert f'href="#self-note-{comp}"' in refused.text  # "Go to the field"
    # Only that rating is open: the other competencies' forms come back as they were.
    assert len(re.findall(r'<details class="self-assess" open>', refused.text)) == 1
