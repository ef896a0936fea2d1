"""Needs attention calls a student blocked by a locked step exactly when the student's pathway
page shows that step locked for them: the two pages read one unlock rule."""

from __future__ import annotations

import html
from decimal import Decimal

from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.models import Option
from lti_app.pathways.options import OptionInput
from lti_app.pathways.unlocking import unlock_step_for_students
from lti_app.pathways.views.student import LOCKED_AGAIN
from tests.insights.conftest import FreshCourse
from tests.progress.pages import unit_of_work, url

TEACHER, STUDENT = "user-t01", "user-s01"


def _safety(fc: FreshCourse, database_url: str, competency_id: int, points: int) -> None:
    with unit_of_work(database_url) as s:
        record_evidence(
            s,
            context_id=fc.context_id,
            competency_id=competency_id,
            student_ids=[fc.student_id],
            points=Decimal(points),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=fc.teacher_id,
        )


def _locked_out_section(fc: FreshCourse) -> str:
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/attention"))
    assert page.status_code == 200
    if 'id="att-locked_out"' not in page.text:
        return ""
    return page.text.split('id="att-locked_out"', 1)[1].split("</section>", 1)[0]


def _student_page(fc: FreshCourse, pathway_id: int) -> str:
    home = fc.lti.launch(STUDENT)
    page = home.client.get(url(home.response, f"/pathways/{pathway_id}"))
    assert page.status_code == 200
    return html.unescape(page.text)


def test_attention_says_locked_out_only_where_the_student_sees_the_step_locked(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    c = fc.context_id
    with unit_of_work(database_url) as s:
        safe = create_competency(s, context_id=c, code="SAFE", title="Lab safety").id
        pathway = services.create_pathway(s, context_id=c, title="Chemistry").id
        step = services.create_step(
            s, context_id=c, pathway_id=pathway, title="Lab", prerequisite_ids=[safe]
        ).id
        options.create_option(s, context_id=c, step_id=step, data=OptionInput("Titration"))
        option = s.scalars(select(Option.id).where(Option.step_id == step)).one()
    _safety(fc, database_url, safe, 3)
    with unit_of_work(database_url) as s:
        choice = ch.choose_option(s, context_id=c, person_id=fc.student_id, option_id=option)
        ch.start_choice(s, context_id=c, person_id=fc.student_id, choice_id=choice.id)
    # A weak safety check: the step locks again under the student's started work.
    _safety(fc, database_url, safe, 1)
    assert "“Lab”" in _locked_out_section(fc)
    assert LOCKED_AGAIN in _student_page(fc, pathway)

    # The teacher retires the pathway: the student can make no move there (a hand unlock
    # would open nothing), and their page says so, not that the step is locked.
    with unit_of_work(database_url) as s:
        services.archive_pathway(s, context_id=c, pathway_id=pathway)
    page = _student_page(fc, pathway)
    assert "Your teacher archived this pathway" in page
    assert LOCKED_AGAIN not in page
    assert "“Lab”" not in _locked_out_section(fc)

    # Back on offer, it is locked again on both pages; a hand unlock opens it on both.
    with unit_of_work(database_url) as s:
        services.restore_pathway(s, context_id=c, pathway_id=pathway)
    assert "“Lab”" in _locked_out_section(fc)
    assert LOCKED_AGAIN in _student_page(fc, pathway)
    with unit_of_work(database_url) as s:
        unlock_step_for_students(
            s, context_id=c, step_id=step, student_ids=[fc.student_id], unlocked_by_id=fc.teacher_id
        )
    assert "“Lab”" not in _locked_out_section(fc)
    assert LOCKED_AGAIN not in _student_page(fc, pathway)
