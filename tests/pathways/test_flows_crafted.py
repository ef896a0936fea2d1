"""Sequences across two people: a teacher archives a step under a student's open page, and a
teacher closes work with a level for a student the roster has since marked as gone."""

from __future__ import annotations

from html import unescape
from typing import Any

from sqlalchemy import func, select, update

from lti_app.db import Database
from lti_app.mastery.models import Evidence
from lti_app.pathways import services
from lti_app.pathways.choices import choose_option, submit_choice
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from lti_app.tool.models import Membership, MembershipStatus
from tests.courses.conftest import bio_students  # noqa: F401 - fixture
from tests.courses.conftest import teacher as teacher_frame  # noqa: F401 - fixture
from tests.courses.frames import Frame, Ids, make_competency, unique
from tests.pathways.conftest import built  # noqa: F401 - fixture
from tests.pathways.test_views import STUDENT, Built
from tests.progress.pages import form, has_form, link, post, unit_of_work


def test_an_archived_step_offers_nothing_new_and_an_old_page_is_told_why(
    lti: Any,
    built: Built,  # noqa: F811
    database_url: str,
) -> None:
    home = lti.launch(STUDENT)
    client = home.client
    page = client.get(link(home.response, f"/pathways/{built.pathway_id}?"))
    page = post(client, form(page, f"/options/{built.animals_option_id}/choose"))
    assert page.status_code == 200
    switch = form(page, f"/options/{built.plain_option_id}/choose")  # kept in an old tab
    with unit_of_work(database_url) as session:
        services.archive_step(session, context_id=built.context_id, step_id=built.open_step_id)

    page = client.get(link(home.response, f"/pathways/{built.pathway_id}?"))
    assert page.status_code == 200
    assert not has_form(page, f"/options/{built.plain_option_id}/choose")
    answer = post(client, switch)
    assert answer.status_code == 400
    assert "taken this step off offer" in unescape(answer.text)


def test_a_level_for_a_student_who_left_is_refused_and_closes_nothing(
    teacher_frame: Frame,  # noqa: F811
    db: Database,
    ids: Ids,
    bio_students: Any,  # noqa: F811
) -> None:
    context_id = ids.context()
    leaver = ids.person(bio_students[2])
    with db.begin() as session:
        competency = make_competency(session, context_id, unique("LV"))
        pathway = create_pathway(session, context_id=context_id, title=unique("Leave "))
        step = create_step(
            session,
            context_id=context_id,
            pathway_id=pathway.id,
            title="Do",
            competency_id=competency,
        )
        option = create_option(
            session, context_id=context_id, step_id=step.id, data=OptionInput("Poster")
        )
        choice = choose_option(
            session, context_id=context_id, person_id=leaver, option_id=option.id
        )
        submit_choice(
            session, context_id=context_id, person_id=leaver, choice_id=choice.id, note=""
        )
        choice_id = choice.id
    is_leaver = (Membership.person_id == leaver) & (Membership.context_id == context_id)
    with db.begin() as session:
        session.execute(
            update(Membership).where(is_leaver).values(status=MembershipStatus.INACTIVE)
        )
    try:
        answer = teacher_frame.post(
            "/course/pending",
            {"action": "done", "choice": str(choice_id), "level": "3.00", "note": ""},
        )
        assert answer.status_code == 400
        assert "has left the course" in unescape(answer.text)
        with db.begin() as session:
            evidence = session.scalar(
                select(func.count())
                .select_from(Evidence)
                .where(Evidence.competency_id == competency)
            )
            status = session.get(Choice, choice_id).status  # type: ignore[union-attr]
        assert evidence == 0
        assert status is ChoiceStatus.SUBMITTED
        # Done without a level is still possible.
        closed = teacher_frame.post(
            "/course/pending", {"action": "done", "choice": str(choice_id), "note": ""}
        )
        assert closed.status_code < 400
        with db.begin() as session:
            assert session.get(Choice, choice_id).status is ChoiceStatus.DONE  # type: ignore[union-attr]
    finally:
        with db.begin() as session:
            session.execute(
                update(Membership).where(is_leaver).values(status=MembershipStatus.ACTIVE)
            )
