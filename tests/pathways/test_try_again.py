"""A step the teacher's evidence closed below mastery, with a later step waiting for that
mastery: the student is offered a second try (with the teacher's note) instead of a dead end,
through the real pages of an LMS of this module's own (tests/courses/frames.py)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.courses.recording import record_and_close
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import Evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.errors import ChoiceNotAllowedError
from lti_app.pathways.models import Attempt, Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput
from lti_app.pathways.retrying import retry_offers_for_student, try_step_again
from lti_app.pathways.student import student_pathway_view
from lti_app.pathways.unlock import CompetencyRef
from lti_app.pathways.unlocking import unlock_step_for_students
from lti_app.progress.services import next_actions, pathway_overview
from tests.conftest import LtiActions
from tests.pathways.conftest import MakeCompetency
from tests.progress.pages import (
    context_id,
    form,
    has_form,
    link,
    person_id,
    post,
    unique,
    unit_of_work,
)

TEACHER, STUDENT = "user-t01", "user-s05"
NOTE = "Mixed up the nucleus and the vacuole."


@dataclass(frozen=True)
class Route:
    context_id: int
    competency_id: int
    code: str
    pathway_id: int
    first_step_id: int
    second_step_id: int
    tour_option_id: int
    model_option_id: int
    second_option_id: int


def _route(database_url: str, lms: RunningPlatform) -> Route:
    """Step 1 teaches the competency (two options); step 2 waits for its mastery."""
    code = unique("CELL")
    with unit_of_work(database_url) as s:
        ctx = context_id(s, lms)
        comp = create_competency(s, context_id=ctx, code=code, title="Cell structure")
        pathway = services.create_pathway(s, context_id=ctx, title=f"Cells and life {code}")
        first = services.create_step(
            s, context_id=ctx, pathway_id=pathway.id, title="Meet the cell", competency_id=comp.id
        )
        second = services.create_step(
            s,
            context_id=ctx,
            pathway_id=pathway.id,
            title="Look through the microscope",
            prerequisite_ids=[comp.id],
        )
        tour, model, lab = (
            options.create_option(s, context_id=ctx, step_id=step, data=OptionInput(title))
            for step, title in (
                (first.id, "Virtual cell tour"),
                (first.id, "Build a cell model"),
                (second.id, "Onion skin lab"),
            )
        )
        return Route(ctx, comp.id, code, pathway.id, first.id, second.id, tour.id, model.id, lab.id)


def _pathway_page(lti: LtiActions, route: Route) -> tuple[httpx.Client, httpx.Response]:
    home = lti.launch(STUDENT)
    page = home.client.get(link(home.response, f"/pathways/{route.pathway_id}?"))
    assert page.status_code == 200, page.text[:500]
    return home.client, page


def _teacher_records(lti: LtiActions, student: int, route: Route, points: str) -> str:
    teacher = lti.launch(TEACHER)
    page = teacher.client.get(link(teacher.response, f"/course/students/{student}?"))
    done = post(
        teacher.client,
        form(page, f"/mastery/students/{student}/evidence"),
        {"competency_id": str(route.competency_id), "points": points, "note": NOTE},
    )
    assert done.status_code == 200, done.text[:1000]
    return done.text


def test_a_step_done_below_mastery_offers_a_second_try_with_the_teachers_note(
    lti: LtiActions, database_url: str
) -> None:
    lti.launch(TEACHER)
    lti.launch(STUDENT)
    route = _route(database_url, lti.lms)
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)

    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/options/{route.tour_option_id}/choose"))
    with unit_of_work(database_url) as s:
        choice_id = s.scalars(
            select(Choice.id).where(
                Choice.person_id == student, Choice.step_id == route.first_step_id
            )
        ).one()
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Worksheet done."})
    assert "Handed in" in page.text

    # The teacher's Developing closes the hand-in, and says the student gets another try.
    said = _teacher_records(lti, student, route, "2")
    assert "the student is offered another try at the step" in said

    client, page = _pathway_page(lti, route)
    assert "Status:</strong> Done" in page.text
    assert f"Unlocks when you master {route.code} Cell structure" in page.text
    # Not a dead end: a second try, and what the teacher said about the competency.
    assert has_form(page, f"/choices/{choice_id}/again")
    assert "Try this step again" in page.text
    assert f"Your teacher's latest note on <bdi>{route.code} Cell structure</bdi> (Developing)" in (
        page.text
    )
    assert NOTE in page.text
    home = client.get(link(page, "/pathways/?"))
    next_steps = html.unescape(home.text.split("What to do next")[1].split("</section>")[0])
    assert f"try “Meet the cell” again: your teacher's evidence puts {route.code}" in next_steps
    assert "work towards" not in next_steps  # no longer the only, vague, advice

    page = post(client, form(page, f"/choices/{choice_id}/again"))
    assert page.status_code == 200, page.text[:500]
    assert "A new try at this step" in page.text
    assert "What you handed in last time" in page.text
    assert "Worksheet done." in page.text  # the first hand-in stays, to start from
    assert not has_form(page, f"/choices/{choice_id}/again")
    # The same option may start again, or another one may be picked instead.
    assert has_form(page, f"/choices/{choice_id}/start")
    assert has_form(page, f"/options/{route.model_option_id}/choose")
    page = post(client, form(page, f"/options/{route.model_option_id}/choose"))
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "A clay model."})
    assert "Handed in" in page.text

    # Mastery on the second try closes it and opens the step that waited.
    said = _teacher_records(lti, student, route, "4")
    assert "another try" not in said
    client, page = _pathway_page(lti, route)
    assert not has_form(page, f"/choices/{choice_id}/again")
    assert has_form(page, f"/options/{route.second_option_id}/choose")
    with unit_of_work(database_url) as s:
        choice = s.get(Choice, choice_id)
        assert choice is not None
        assert choice.status is ChoiceStatus.DONE
        assert choice.option_id == route.model_option_id


def test_a_step_done_at_mastery_or_with_nothing_waiting_offers_no_second_try(
    lti: LtiActions, database_url: str
) -> None:
    lti.launch(TEACHER)
    lti.launch(STUDENT)
    route = _route(database_url, lti.lms)
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)
        teacher = person_id(s, lti.lms, TEACHER)
    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/options/{route.tour_option_id}/choose"))
    with unit_of_work(database_url) as s:
        choice_id = s.scalars(
            select(Choice.id).where(
                Choice.person_id == student, Choice.step_id == route.first_step_id
            )
        ).one()
    post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Done."})
    _teacher_records(lti, student, route, "2")
    # A teacher's unlock opens step 2: nothing waits for step 1 any more.
    with unit_of_work(database_url) as s:
        unlock_step_for_students(
            s,
            context_id=route.context_id,
            step_id=route.second_step_id,
            student_ids=[student],
            unlocked_by_id=teacher,
        )
    client, page = _pathway_page(lti, route)
    assert not has_form(page, f"/choices/{choice_id}/again")
    refused = client.post(
        str(page.url.join(f"/pathways/choices/{choice_id}/again")),
        data=form(page, f"/options/{route.second_option_id}/choose").fields,
    )
    assert refused.status_code == 400
    assert "can&#39;t be tried again" in refused.text


def test_a_step_locked_again_behind_a_done_step_points_to_trying_that_step_again(
    session: Session, course: int, student: int, teacher: int, make_competency: MakeCompetency
) -> None:
    """Step 2 opened on mastery, was started, and locked again when a later result dipped the
    level: the student is told to carry on, and how, by trying step 1 again."""
    cell = make_competency(course, "CELL.1", "Cell structure")
    pathway = services.create_pathway(session, context_id=course, title="Cells")
    first = services.create_step(
        session, context_id=course, pathway_id=pathway.id, title="Meet the cell", competency_id=cell
    )
    second = services.create_step(
        session,
        context_id=course,
        pathway_id=pathway.id,
        title="Microscope",
        prerequisite_ids=[cell],
    )
    picks = [
        options.create_option(session, context_id=course, step_id=s.id, data=OptionInput("Go"))
        for s in (first, second)
    ]

    def result(points: int) -> None:
        record_and_close(
            session,
            context_id=course,
            competency_id=cell,
            student_ids=[student],
            points=Decimal(points),
            note=f"Scored {points}",
            recorded_by_id=teacher,
        )

    one = ch.choose_option(session, context_id=course, person_id=student, option_id=picks[0].id)
    ch.submit_choice(session, context_id=course, person_id=student, choice_id=one.id)
    result(4)  # mastered: closes step 1 and opens step 2
    two = ch.choose_option(session, context_id=course, person_id=student, option_id=picks[1].id)
    ch.start_choice(session, context_id=course, person_id=student, choice_id=two.id)
    result(1)  # the level dips below mastery: step 2 locks again
    assert retry_offers_for_student(
        session, context_id=course, person_id=student, pathway_id=pathway.id
    ) == {first.id: (CompetencyRef(cell, "CELL.1", "Cell structure"),)}

    actions = next_actions(pathway_overview(session, context_id=course, person_id=student))
    assert [a.step_id for a in actions] == [second.id, first.id]
    assert "“Microscope” is locked again" in actions[0].text
    assert "try “Meet the cell” again" in actions[1].text
    view = student_pathway_view(
        session, context_id=course, pathway_id=pathway.id, person_id=student
    )
    assert [n.note for n in view.steps[0].teacher_notes] == ["Scored 1"]

    again = try_step_again(session, context_id=course, person_id=student, choice_id=one.id)
    assert again.status is ChoiceStatus.CHOSEN
    assert again.done_at is None
    assert again.submission_note == ""  # handed in with no note: nothing lost, nothing made up
    # The new try is not "stuck" work of the first try's age: its clock starts now.
    assert again.started_at is None
    ch.start_choice(session, context_id=course, person_id=student, choice_id=one.id)
    with pytest.raises(ChoiceNotAllowedError):  # in progress: nothing to try again
        try_step_again(session, context_id=course, person_id=student, choice_id=one.id)


def _hand_in(
    client: httpx.Client, page: httpx.Response, route: Route, option_id: int, note: str
) -> int:
    """The student picks the option of step 1 and hands in; returns the choice id."""
    page = post(client, form(page, f"/options/{option_id}/choose"))
    choice_id = int(form(page, "/submit").action.split("/choices/")[1].split("/")[0])
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": note})
    assert "Handed in" in page.text
    return choice_id


def test_every_try_is_kept_and_shown_to_the_student_and_the_teacher(
    lti: LtiActions, database_url: str
) -> None:
    """A second hand-in once overwrote the first: the student's earlier work was lost."""
    lti.launch(TEACHER)
    lti.launch(STUDENT)
    route = _route(database_url, lti.lms)
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)
    client, page = _pathway_page(lti, route)
    choice_id = _hand_in(client, page, route, route.tour_option_id, "Worksheet done.")
    _teacher_records(lti, student, route, "2")

    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/again"))
    page = post(client, form(page, f"/options/{route.model_option_id}/choose"))
    # The new hand-in starts from the first one's words.
    assert ">Worksheet done.</textarea>" in page.text
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "A clay model."})

    # The student reads both tries: the first with what closed it.
    earlier = html.unescape(page.text.split(">Earlier tries<")[1].split("</section>")[0])
    assert "Try 1: <bdi>Virtual cell tour</bdi>" in earlier
    assert "Worksheet done." in earlier
    assert "Your teacher's evidence: Developing" in earlier
    assert NOTE in earlier
    assert "A clay model." not in earlier
    assert "A clay model." in page.text

    # The teacher reads them where they review the work: the student's page and the overview.
    teacher = lti.launch(TEACHER)
    overview = teacher.response  # the launch lands on the overview
    mine = html.unescape(overview.text.split(f'value="{choice_id}"')[1].split("</tr>")[0])
    assert "A clay model." in mine
    assert "Earlier tries (1)" in mine
    assert "Worksheet done." in mine
    assert "Closed by evidence: Developing, " in mine
    student_page = teacher.client.get(link(teacher.response, f"/course/students/{student}?"))
    choices = html.unescape(student_page.text.split('id="choices"')[1].split("</table>")[0])
    assert "Earlier tries (1)" in choices
    assert "Worksheet done." in choices
    assert "A clay model." in choices

    with unit_of_work(database_url) as s:
        [attempt] = s.scalars(
            select(Attempt).where(
                Attempt.person_id == student, Attempt.step_id == route.first_step_id
            )
        ).all()
        assert (attempt.number, attempt.option_id) == (1, route.tour_option_id)
        assert attempt.submission_note == "Worksheet done."
        assert attempt.submitted_at is not None
        assert attempt.done_at is not None
        closing = s.get(Evidence, attempt.evidence_id)
        assert closing is not None
        assert closing.note == NOTE


def test_the_class_form_and_the_overview_say_the_student_gets_another_try(
    lti: LtiActions, database_url: str
) -> None:
    """Only the one-student evidence form said so; the teacher recording for the class, or
    marking work done on the overview, was not told the student has a way on."""
    lti.launch(TEACHER)
    lti.launch(STUDENT)
    route = _route(database_url, lti.lms)
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)

    client, page = _pathway_page(lti, route)
    choice_id = _hand_in(client, page, route, route.tour_option_id, "First.")
    teacher = lti.launch(TEACHER)
    bulk = teacher.client.get(link(teacher.response, "/mastery/evidence/bulk?"))
    done = post(
        teacher.client,
        form(bulk, "/mastery/evidence/bulk"),
        {"student": str(student), "competency_id": str(route.competency_id), "points": "2"},
    )
    assert done.status_code == 200, done.text[:1000]
    assert "Evidence recorded for 1 student(s)." in done.text
    assert "the student is offered another try at the step" in done.text

    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/again"))
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Second."})
    teacher = lti.launch(TEACHER)
    overview = teacher.response  # the launch lands on the overview
    marked = post(
        teacher.client,
        form(overview, "/course/pending"),
        {"choice": str(choice_id), "action": "done", "level": "2", "note": ""},
    )
    assert marked.status_code == 200, marked.text[:1000]
    assert "Marked 1 choice(s) done and recorded evidence." in marked.text
    assert "the student is offered another try at the step" in marked.text

    # At mastery, nothing waits any more: neither says it.
    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/again"))
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Third."})
    teacher = lti.launch(TEACHER)
    overview = teacher.response  # the launch lands on the overview
    marked = post(
        teacher.client,
        form(overview, "/course/pending"),
        {"choice": str(choice_id), "action": "done", "level": "4", "note": ""},
    )
    assert "Marked 1 choice(s) done and recorded evidence." in marked.text
    assert "another try" not in marked.text
    with unit_of_work(database_url) as s:
        tries = s.scalars(
            select(Attempt.submission_note)
            .where(Attempt.person_id == student, Attempt.step_id == route.first_step_id)
            .order_by(Attempt.number)
        ).all()
    assert tries == ["First.", "Second."]
