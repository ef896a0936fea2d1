"""A new try at a step done below mastery, at its edges: given up, of an option the teacher
approves, after a teacher's note, of an option the teacher retired. Through the real pages of
an LMS of this module's own (tests/courses/frames.py)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.pathways import options, services
from lti_app.pathways.models import Attempt, Choice, ChoiceStatus, Option
from lti_app.pathways.options import OptionInput
from lti_app.pathways.reviewing import approve_choices, return_choices
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
LONG_AGO = datetime(2020, 1, 15, 12, tzinfo=UTC)
"""When the first try happened, in tests where its age matters: long before any new try."""


@dataclass(frozen=True)
class Route:
    context_id: int
    competency_id: int
    pathway_id: int
    first_step_id: int
    tour_option_id: int
    model_option_id: int
    student: int
    teacher: int


def _route(lti: LtiActions, database_url: str, *, tour_needs_approval: bool = False) -> Route:
    """Step 1 teaches the competency (a tour and a model); step 2 waits for its mastery."""
    lti.launch(TEACHER)
    lti.launch(STUDENT)
    code = unique("CELL")
    with unit_of_work(database_url) as s:
        ctx = context_id(s, lti.lms)
        comp = create_competency(s, context_id=ctx, code=code, title="Cell structure")
        pathway = services.create_pathway(s, context_id=ctx, title=f"Cells {code}")
        first = services.create_step(
            s, context_id=ctx, pathway_id=pathway.id, title="Meet the cell", competency_id=comp.id
        )
        second = services.create_step(
            s, context_id=ctx, pathway_id=pathway.id, title="Microscope", prerequisite_ids=[comp.id]
        )
        tour = options.create_option(
            s,
            context_id=ctx,
            step_id=first.id,
            data=OptionInput("Virtual cell tour", requires_approval=tour_needs_approval),
        )
        model = options.create_option(
            s, context_id=ctx, step_id=first.id, data=OptionInput("Build a cell model")
        )
        options.create_option(s, context_id=ctx, step_id=second.id, data=OptionInput("Lab"))
        return Route(
            ctx,
            comp.id,
            pathway.id,
            first.id,
            tour.id,
            model.id,
            person_id(s, lti.lms, STUDENT),
            person_id(s, lti.lms, TEACHER),
        )


def _pathway_page(lti: LtiActions, route: Route) -> tuple[httpx.Client, httpx.Response]:
    home = lti.launch(STUDENT)
    page = home.client.get(link(home.response, f"/pathways/{route.pathway_id}?"))
    assert page.status_code == 200, page.text[:500]
    return home.client, page


def _choice(database_url: str, route: Route) -> Choice:
    with unit_of_work(database_url) as s:
        choice = s.scalars(
            select(Choice).where(
                Choice.person_id == route.student, Choice.step_id == route.first_step_id
            )
        ).one()
        s.expunge(choice)
        return choice


def _teacher_records(lti: LtiActions, route: Route, points: str, note: str = "Not yet.") -> None:
    teacher = lti.launch(TEACHER)
    page = teacher.client.get(link(teacher.response, f"/course/students/{route.student}?"))
    done = post(
        teacher.client,
        form(page, f"/mastery/students/{route.student}/evidence"),
        {"competency_id": str(route.competency_id), "points": points, "note": note},
    )
    assert done.status_code == 200, done.text[:1000]


def _done_below_mastery(lti: LtiActions, database_url: str, route: Route, note: str) -> int:
    """The student picks the tour and hands in `note`; the teacher's Developing closes it."""
    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/options/{route.tour_option_id}/choose"))
    choice_id = _choice(database_url, route).id
    if not has_form(page, f"/choices/{choice_id}/submit"):  # the tour waits for approval
        with unit_of_work(database_url) as s:
            approve_choices(
                s, context_id=route.context_id, choice_ids=[choice_id], decided_by_id=route.teacher
            )
        client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": note})
    assert "Handed in" in page.text
    _teacher_records(lti, route, "2")
    assert _choice(database_url, route).status is ChoiceStatus.DONE
    return choice_id


def _choices_table(lti: LtiActions, route: Route) -> str:
    """The Choices table of the student's page, as their teacher reads it."""
    teacher = lti.launch(TEACHER)
    page = teacher.client.get(link(teacher.response, f"/course/students/{route.student}?"))
    return html.unescape(page.text.split('id="choices"')[1].split("</table>")[0])


def test_withdrawing_a_new_try_puts_the_step_back_to_done_with_the_last_try(
    lti: LtiActions, database_url: str
) -> None:
    """A new try offers Withdraw; withdrawing once deleted the step's choice: the last try's
    hand-in left the student's page and the teacher's Choices table, earlier tries with it."""
    route = _route(lti, database_url)
    choice_id = _done_below_mastery(lti, database_url, route, "First worksheet.")
    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/again"))
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Second worksheet."})
    _teacher_records(lti, route, "2")

    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/again"))
    assert "Withdraw this new try" in page.text
    withdraw = form(page, f"/choices/{choice_id}/withdraw")
    page = post(client, withdraw)
    assert "Your new try is withdrawn: the step is done again" in html.unescape(page.text)
    assert "Status:</strong> Done" in page.text
    assert "Second worksheet." in page.text.split(">Earlier tries<")[0]
    assert has_form(page, f"/choices/{choice_id}/again")  # the way on is still there
    again = post(client, withdraw)  # a double click: the step is done, as the first left it
    assert again.status_code == 200
    assert "Status:</strong> Done" in again.text

    choices = _choices_table(lti, route)
    assert "Second worksheet." in choices
    assert "Earlier tries (1)" in choices
    assert "First worksheet." in choices
    with unit_of_work(database_url) as s:
        notes = s.scalars(
            select(Attempt.submission_note).where(
                Attempt.person_id == route.student, Attempt.step_id == route.first_step_id
            )
        ).all()
    assert notes == ["First worksheet."]
    assert _choice(database_url, route).status is ChoiceStatus.DONE


def test_a_new_try_of_an_approved_option_is_dated_from_its_start(
    lti: LtiActions, database_url: str
) -> None:
    """The new try kept the first approval's date: the teacher read it as stuck on the step
    from the start, and the Choices table dated it by that approval."""
    route = _route(lti, database_url, tour_needs_approval=True)
    choice_id = _done_below_mastery(lti, database_url, route, "Toured.")
    with unit_of_work(database_url) as s:
        first = s.get(Choice, choice_id)
        assert first is not None
        assert first.approved_at is not None
        first.chosen_at = first.approved_at = first.started_at = LONG_AGO
        first.submitted_at = first.done_at = LONG_AGO
    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/again"))
    assert has_form(page, f"/choices/{choice_id}/start")  # still approved: no new wait
    assert _choice(database_url, route).status is ChoiceStatus.APPROVED

    teacher = lti.launch(TEACHER)
    attention = teacher.client.get(link(teacher.response, "/insights/attention?"))
    assert attention.status_code == 200, attention.text[:500]
    assert "Meet the cell" not in html.unescape(attention.text)
    row = _choices_table(lti, route).split("<tr>")[2]
    since = row.split("<td")[4]
    assert "2020-" not in since, since
    assert "2020-01-15" in row  # the first try, under Earlier tries


def test_a_switch_on_a_new_try_keeps_the_teachers_note_on_the_last_one(
    lti: LtiActions, database_url: str
) -> None:
    route = _route(lti, database_url)
    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/options/{route.tour_option_id}/choose"))
    choice_id = _choice(database_url, route).id
    post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Toured."})
    with unit_of_work(database_url) as s:
        return_choices(
            s,
            context_id=route.context_id,
            choice_ids=[choice_id],
            decided_by_id=route.teacher,
            note="Label the organelles.",
        )
    client, page = _pathway_page(lti, route)
    post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Labelled."})
    _teacher_records(lti, route, "2")

    client, page = _pathway_page(lti, route)
    page = post(client, form(page, f"/choices/{choice_id}/again"))
    page = post(client, form(page, f"/options/{route.model_option_id}/choose"))
    assert "Label the organelles." in page.text.split(">Earlier tries<")[1]
    assert "Label the organelles." in _choices_table(lti, route)


def test_a_new_try_of_an_option_the_teacher_retired_goes_on_with_another(
    lti: LtiActions, database_url: str
) -> None:
    """A new try reopened the retired option: the student started work on an option the
    teacher had taken off offer."""
    route = _route(lti, database_url)
    choice_id = _done_below_mastery(lti, database_url, route, "Toured.")
    with unit_of_work(database_url) as s:
        options.archive_option(s, context_id=route.context_id, option_id=route.tour_option_id)

    client, page = _pathway_page(lti, route)
    text = html.unescape(page.text)
    assert "Your teacher has taken <bdi>Virtual cell tour</bdi> off offer" in text
    assert "Try again with <bdi>Build a cell model</bdi>" in text
    same = form(page, f"/choices/{choice_id}/again")
    assert same.fields.get("option_id") == str(route.model_option_id)
    # A page from before the teacher archived it offers the tour again: refused, and why.
    stale = client.post(
        str(page.url.join(f"/pathways/choices/{choice_id}/again")),
        data={k: v for k, v in same.fields.items() if k != "option_id"},
    )
    assert stale.status_code == 400
    assert "taken “Virtual cell tour” off offer" in html.unescape(stale.text)
    assert _choice(database_url, route).status is ChoiceStatus.DONE

    page = post(client, same)
    assert "A new try at this step" in page.text
    assert "Your choice: <bdi>Build a cell model</bdi>" in page.text
    assert has_form(page, f"/choices/{choice_id}/start")
    choice = _choice(database_url, route)
    assert (choice.status, choice.option_id) == (ChoiceStatus.CHOSEN, route.model_option_id)


def test_work_never_starts_on_an_option_picked_after_it_was_retired(
    lti: LtiActions, database_url: str
) -> None:
    """A new try opened on a retired option (before the fix) can't start there: the student
    is told to switch. Archiving still lets those who had picked it before finish."""
    route = _route(lti, database_url)
    choice_id = _done_below_mastery(lti, database_url, route, "Toured.")
    with unit_of_work(database_url) as s:
        options.archive_option(s, context_id=route.context_id, option_id=route.model_option_id)
        retired = s.get(Option, route.model_option_id)
        assert retired is not None
        assert retired.archived_at is not None
        choice = s.get(Choice, choice_id)
        assert choice is not None
        choice.option_id, choice.status = route.model_option_id, ChoiceStatus.CHOSEN
        choice.chosen_at, choice.done_at = retired.archived_at, None
    client, page = _pathway_page(lti, route)
    assert "Your teacher has taken this option off offer: switch to another option" in page.text
    assert not has_form(page, f"/choices/{choice_id}/start")
    assert not has_form(page, f"/choices/{choice_id}/submit")
    hidden = form(page, f"/choices/{choice_id}/withdraw").fields
    for move in ("start", "submit"):
        refused = client.post(
            str(page.url.join(f"/pathways/choices/{choice_id}/{move}")), data=hidden
        )
        assert refused.status_code == 400
        assert "taken “Build a cell model” off offer" in html.unescape(refused.text)
    page = post(client, form(page, f"/options/{route.tour_option_id}/choose"))
    page = post(client, form(page, f"/choices/{choice_id}/start"))
    assert "Started" in page.text
