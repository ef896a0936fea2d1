"""A step the teacher's evidence closed below mastery, with a later step waiting for that
mastery: the student is offered a second try (with the teacher's note) instead of a dead end,
through the real pages of an LMS of this module's own (tests/courses/frames.py)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.demo.server import RunningPlatform
from lti_app.pathways import options, services
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput
from lti_app.pathways.unlocking import unlock_step_for_students
from tests.conftest import LtiActions
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
