"""Needs attention calls a student blocked by a locked step exactly when the student's pathway
page shows that step locked for them: the two pages read one unlock rule. Likewise it calls a
student stuck on a step only where the student can still move (a pathway on offer)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from lti_app.competencies.services import archive_competency, create_competency
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.models import Choice, Option
from lti_app.pathways.options import OptionInput
from lti_app.pathways.unlocking import relock_step_for_students, unlock_step_for_students
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


def _attention_section(fc: FreshCourse, kind: str) -> str:
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/attention"))
    assert page.status_code == 200
    if f'id="att-{kind}"' not in page.text:
        return ""
    return page.text.split(f'id="att-{kind}"', 1)[1].split("</section>", 1)[0]


def _locked_out_section(fc: FreshCourse) -> str:
    return _attention_section(fc, "locked_out")


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


def test_attention_says_stuck_only_where_the_student_can_still_move(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    c = fc.context_id
    with unit_of_work(database_url) as s:
        pathway = services.create_pathway(s, context_id=c, title="Chemistry").id
        step = services.create_step(s, context_id=c, pathway_id=pathway, title="Lab").id
        options.create_option(s, context_id=c, step_id=step, data=OptionInput("Titration"))
        option = s.scalars(select(Option.id).where(Option.step_id == step)).one()
        choice = ch.choose_option(s, context_id=c, person_id=fc.student_id, option_id=option)
        ch.start_choice(s, context_id=c, person_id=fc.student_id, choice_id=choice.id)
        # Started a month ago and not handed in: longer than the page's 14 days.
        month_ago = datetime.now(UTC) - timedelta(days=30)
        s.execute(
            update(Choice)
            .where(Choice.id == choice.id)
            .values(chosen_at=month_ago, approved_at=None, started_at=month_ago)
        )
    assert "“Lab”" in _attention_section(fc, "stuck")

    # Archived, the pathway is frozen: the student can neither go on nor leave it, so there
    # is nothing to talk them through; the teacher is not told to.
    with unit_of_work(database_url) as s:
        services.archive_pathway(s, context_id=c, pathway_id=pathway)
    assert "Your teacher archived this pathway" in _student_page(fc, pathway)
    assert "“Lab”" not in _attention_section(fc, "stuck")

    with unit_of_work(database_url) as s:
        services.restore_pathway(s, context_id=c, pathway_id=pathway)
    assert "“Lab”" in _attention_section(fc, "stuck")


def test_step_groups_call_work_locked_exactly_where_the_student_sees_it_locked(
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

    def groups() -> str:
        home = fc.lti.launch(TEACHER)
        page = home.client.get(url(home.response, "/insights/groups/propose") + f"&step={step}")
        return html.unescape(page.text) if page.status_code == 200 else ""

    def is_working_open() -> bool:
        page = groups()
        return "Working on step 1 “Lab”" in page and "but locked" not in page

    locked = "Working on step 1 “Lab” but locked: needs SAFE"
    # Prerequisite mastered: open on both pages.
    assert is_working_open()
    assert LOCKED_AGAIN not in _student_page(fc, pathway)
    # The level dips: locked on both.
    _safety(fc, database_url, safe, 1)
    assert locked in groups()
    assert LOCKED_AGAIN in _student_page(fc, pathway)
    # A hand unlock opens it on both.
    with unit_of_work(database_url) as s:
        unlock_step_for_students(
            s, context_id=c, step_id=step, student_ids=[fc.student_id], unlocked_by_id=fc.teacher_id
        )
    assert is_working_open()
    assert LOCKED_AGAIN not in _student_page(fc, pathway)
    # Withdrawn, then the prerequisite archived: it can no longer be mastered, so it locks
    # nothing on either page.
    with unit_of_work(database_url) as s:
        relock_step_for_students(s, context_id=c, step_id=step, student_ids=[fc.student_id])
    assert locked in groups()
    with unit_of_work(database_url) as s:
        archive_competency(s, context_id=c, competency_id=safe)
    assert is_working_open()
    assert LOCKED_AGAIN not in _student_page(fc, pathway)
    # An archived pathway's steps are not offered to group by at all: nobody moves there.
    with unit_of_work(database_url) as s:
        services.archive_pathway(s, context_id=c, pathway_id=pathway)
    assert "Lab" not in groups()
