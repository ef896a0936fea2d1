"""Follow-ups on the pathway journey that earlier reviews noted: a step locked again after a
student picked in it, returned work in a pathway archived afterwards, a double-clicked Move up or
Move down, and further probes of the editor and the student's pages."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import select

from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.errors import ChoiceNotAllowedError
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Step
from lti_app.pathways.options import OptionInput
from lti_app.pathways.unlocking import relock_step_for_students, unlock_step_for_students
from tests.conftest import LtiActions
from tests.pathways.test_views import STUDENT, TEACHER, Built
from tests.progress.pages import form, has_form, link, person_id, post, unit_of_work, url

# --- the editor's Move up / Move down -----------------------------------------------------------


def _step_titles(database_url: str, pathway_id: int) -> list[str]:
    with unit_of_work(database_url) as s:
        return list(
            s.scalars(
                select(Step.title)
                .where(Step.pathway_id == pathway_id)
                .order_by(Step.position, Step.id)
            )
        )


def _option_titles(database_url: str, step_id: int) -> list[str]:
    with unit_of_work(database_url) as s:
        return list(
            s.scalars(
                select(Option.title)
                .where(Option.step_id == step_id)
                .order_by(Option.position, Option.id)
            )
        )


def test_a_double_clicked_move_up_moves_a_step_one_place(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """The teacher double-clicks "Move up" on the third step: it moves one place, not two, and
    the second click says plainly that nothing was moved."""
    with unit_of_work(database_url) as s:
        third = services.create_step(
            s, context_id=built.context_id, pathway_id=built.pathway_id, title="Reflect"
        ).id
    teacher = lti.launch(TEACHER)
    editor = teacher.client.get(url(teacher.response, f"/pathways/manage/{built.pathway_id}"))
    move_up = form(editor, f"/manage/step/{third}/up")
    first = post(teacher.client, move_up)
    assert "The order is changed" in first.text
    second = post(teacher.client, move_up)
    assert second.status_code == 200
    assert "Nothing was moved" in second.text
    assert _step_titles(database_url, built.pathway_id) == ["Explore", "Reflect", "Go deeper"]
    # From the page as it is now, the same button moves it again.
    again = post(teacher.client, form(second, f"/manage/step/{third}/up"))
    assert "The order is changed" in again.text
    assert _step_titles(database_url, built.pathway_id) == ["Reflect", "Explore", "Go deeper"]


def test_a_double_clicked_move_down_moves_an_option_one_place(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    with unit_of_work(database_url) as s:
        options.create_option(
            s,
            context_id=built.context_id,
            step_id=built.open_step_id,
            data=OptionInput("Watch a video"),
        )
    teacher = lti.launch(TEACHER)
    step_page = teacher.client.get(
        url(teacher.response, f"/pathways/manage/steps/{built.open_step_id}")
    )
    move_down = form(step_page, f"/manage/option/{built.animals_option_id}/down")
    post(teacher.client, move_down)
    second = post(teacher.client, move_down)
    assert "Nothing was moved" in second.text
    assert _option_titles(database_url, built.open_step_id) == [
        "Read chapter 3",
        "Animal cells field guide",
        "Watch a video",
    ]


def test_a_double_clicked_move_down_moves_a_pathway_one_place(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    with unit_of_work(database_url) as s:
        for title in ("Second pathway", "Third pathway"):
            services.create_pathway(s, context_id=built.context_id, title=title)
        before = [p.id for p in services.list_pathways(s, context_id=built.context_id)]
    teacher = lti.launch(TEACHER)
    manage = teacher.client.get(link(teacher.response, "/pathways/manage?"))
    move_down = form(manage, f"/manage/pathway/{before[0]}/down")
    post(teacher.client, move_down)
    second = post(teacher.client, move_down)
    assert "Nothing was moved" in second.text
    with unit_of_work(database_url) as s:
        after = [p.id for p in services.list_pathways(s, context_id=built.context_id)]
    assert after == [before[1], before[0], *before[2:]]


# --- a step locked again after the student picked in it ----------------------------------------


def _student_page(lti: LtiActions, built: Built) -> tuple[httpx.Client, httpx.Response]:
    home = lti.launch(STUDENT)
    page = home.client.get(link(home.response, f"/pathways/{built.pathway_id}?"))
    assert page.status_code == 200
    return home.client, page


def _choice_in(database_url: str, lti: LtiActions, step_id: int, sub: str = STUDENT) -> Choice:
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, sub)
        row = s.scalars(
            select(Choice).where(Choice.person_id == me, Choice.step_id == step_id)
        ).one()
        s.expunge(row)
        return row


def _set_unlock(lti: LtiActions, built: Built, database_url: str, action: str) -> str:
    """The teacher ticks the student on the locked step's page and presses Unlock or Withdraw."""
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)
    teacher = lti.launch(TEACHER)
    step_page = teacher.client.get(
        url(teacher.response, f"/pathways/manage/steps/{built.locked_step_id}")
    )
    done = post(
        teacher.client,
        form(step_page, f"/manage/steps/{built.locked_step_id}/unlock"),
        {"student_ids": [str(student)], "action": action},
    )
    assert done.status_code == 200
    return done.text


def test_a_step_locked_again_keeps_the_pick_but_takes_no_new_work(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """The teacher unlocks "Go deeper" for a student, who picks "Osmosis lab" and starts; the
    teacher withdraws the unlock. The student's page says the step is locked and why, keeps
    the pick, offers no Hand in, and a hand-in from the page opened before is refused in
    words with the note kept as typed. Unlocked again, the work can be handed in."""
    lti.launch(STUDENT)
    _set_unlock(lti, built, database_url, "unlock")
    client, page = _student_page(lti, built)
    page = post(client, form(page, f"/options/{built.locked_option_id}/choose"))
    choice_id = _choice_in(database_url, lti, built.locked_step_id).id
    page = post(client, form(page, f"/choices/{choice_id}/start"))
    assert "Status:</strong> In progress" in page.text
    stale_submit = form(page, f"/choices/{choice_id}/submit")

    told = _set_unlock(lti, built, database_url, "relock")
    assert "can&#39;t start or hand in" in told  # the teacher hears what it means for work

    page = client.get(page.url)
    section = page.text[page.text.index(f'id="step-{built.locked_step_id}"') :]
    assert f"Unlocks when you master {built.competency_code} Cell transport" in section
    assert "Your choice: <bdi>Osmosis lab</bdi>" in section
    assert "This step is locked for you now" in section
    assert not has_form(page, f"/choices/{choice_id}/submit")
    assert not has_form(page, f"/choices/{choice_id}/start")

    refused = post(client, stale_submit, {"note": "My osmosis results"}, follow=False)
    assert refused.status_code == 400
    assert "This step is locked for you now" in refused.text
    assert "My osmosis results</textarea>" in refused.text  # the refused note comes back
    after = _choice_in(database_url, lti, built.locked_step_id)
    assert (after.status, after.option_id) == (ChoiceStatus.IN_PROGRESS, built.locked_option_id)

    _set_unlock(lti, built, database_url, "unlock")
    page = client.get(page.url)
    handed = post(
        client, form(page, f"/choices/{choice_id}/submit"), {"note": "My osmosis results"}
    )
    assert "Handed in: waiting for your teacher" in handed.text


def test_a_pick_in_a_step_locked_again_cannot_be_started(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """A pick not started yet: after the unlock is withdrawn, Start is gone and a Start from
    the page opened before is refused; the student may still withdraw the pick."""
    lti.launch(STUDENT)
    _set_unlock(lti, built, database_url, "unlock")
    client, page = _student_page(lti, built)
    page = post(client, form(page, f"/options/{built.locked_option_id}/choose"))
    choice_id = _choice_in(database_url, lti, built.locked_step_id).id
    stale_start = form(page, f"/choices/{choice_id}/start")
    _set_unlock(lti, built, database_url, "relock")

    refused = post(client, stale_start, follow=False)
    assert refused.status_code == 400
    assert "This step is locked for you now" in refused.text
    assert _choice_in(database_url, lti, built.locked_step_id).status is ChoiceStatus.CHOSEN
    page = client.get(page.url)
    assert not has_form(page, f"/choices/{choice_id}/start")
    assert not has_form(page, f"/options/{built.locked_option_id}/choose")
    withdrawn = post(client, form(page, f"/choices/{choice_id}/withdraw"))
    assert "Your choice is withdrawn" in withdrawn.text


def test_work_handed_in_before_the_step_locked_again_stays_and_can_be_marked_done(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    lti.launch(STUDENT)
    _set_unlock(lti, built, database_url, "unlock")
    client, page = _student_page(lti, built)
    page = post(client, form(page, f"/options/{built.locked_option_id}/choose"))
    choice_id = _choice_in(database_url, lti, built.locked_step_id).id
    post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Potato experiment"})
    _set_unlock(lti, built, database_url, "relock")

    page = client.get(page.url)
    assert "Potato experiment" in page.text
    assert "Handed in: waiting for your teacher" in page.text
    teacher = lti.launch(TEACHER)
    overview = teacher.response
    assert "Potato experiment" in overview.text
    answered = teacher.client.post(
        form(overview, "/course/pending").action,
        data={
            **dict(form(overview, "/course/pending").fields),
            "choice": str(choice_id),
            "action": "done",
        },
    )
    assert answered.status_code == 303
    page = client.get(page.url)
    assert "Status:</strong> Done" in page.text
    assert "This step is locked for you now" not in page.text


def test_the_services_refuse_new_work_on_a_step_locked_again(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """The rule lives in the domain, not only in the buttons: start and hand-in on a step the
    student may not open are refused whatever page posts them."""
    lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
        teacher_id = person_id(s, lti.lms, TEACHER)
        unlock_step_for_students(
            s,
            context_id=built.context_id,
            step_id=built.locked_step_id,
            student_ids=[me],
            unlocked_by_id=teacher_id,
        )
        choice_id = ch.choose_option(
            s, context_id=built.context_id, person_id=me, option_id=built.locked_option_id
        ).id
        relock_step_for_students(
            s, context_id=built.context_id, step_id=built.locked_step_id, student_ids=[me]
        )
    for move in (ch.start_choice, ch.submit_choice):
        with unit_of_work(database_url) as s, pytest.raises(ChoiceNotAllowedError, match="locked"):
            move(s, context_id=built.context_id, person_id=me, choice_id=choice_id)
    # Mastering the prerequisite opens the step again, and the same pick goes on.
    with unit_of_work(database_url) as s:
        started = ch.start_choice(
            s,
            context_id=built.context_id,
            person_id=me,
            choice_id=choice_id,
            mastered_ids={built.competency_id},
        )
        assert started.status is ChoiceStatus.IN_PROGRESS


# --- returned work in a pathway archived afterwards ----------------------------------------------


def _return_with_note(lti: LtiActions, choice_id: int, note: str) -> None:
    teacher = lti.launch(TEACHER)
    overview = teacher.response
    pending = form(overview, "/course/pending")
    answered = teacher.client.post(
        pending.action,
        data={**dict(pending.fields), "choice": str(choice_id), "action": "return", "note": note},
    )
    assert answered.status_code == 303


def _archive_pathway(lti: LtiActions, pathway_id: int, action: str = "archive") -> str:
    teacher = lti.launch(TEACHER)
    manage = teacher.client.get(link(teacher.response, "/pathways/manage?"))
    done = post(teacher.client, form(manage, f"/manage/pathway/{pathway_id}/{action}"))
    assert done.status_code == 200
    return done.text


def test_work_returned_in_a_pathway_archived_afterwards_stays_readable(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """A student hands work in; the teacher sends it back with a note, then archives the
    pathway. The student still finds the pathway (under "Archived pathways" on their home),
    reads the teacher's note and what they handed in, and is told plainly that nothing can
    change there; a hand-in from the page opened before is refused in words. Restored, the
    work can be handed in again."""
    client, page = _student_page(lti, built)
    home_url = link(page, "/pathways/?")
    page = post(client, form(page, f"/options/{built.plain_option_id}/choose"))
    choice_id = _choice_in(database_url, lti, built.open_step_id).id
    page = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Chapter summary"})
    _return_with_note(lti, choice_id, "Add the diagram on page 41")
    page = client.get(page.url)
    stale_submit = form(page, f"/choices/{choice_id}/submit")
    told = _archive_pathway(lti, built.pathway_id)
    assert "read their work and your notes" in told

    home = client.get(home_url)
    assert "Archived pathways" in home.text
    archived = client.get(link(home, f"/pathways/{built.pathway_id}?"))
    assert archived.status_code == 200
    assert "Your teacher archived this pathway" in archived.text
    assert "Add the diagram on page 41" in archived.text
    assert "Chapter summary" in archived.text
    assert "Returned by your teacher with a note" in archived.text
    assert "hand it in again" not in archived.text
    assert "Go deeper" not in archived.text  # steps without work stay hidden
    assert "Animal cells field guide" not in archived.text  # so do options not chosen
    assert not has_form(archived, "/submit")
    assert not has_form(archived, "/choose")

    refused = post(client, stale_submit, {"note": "With the diagram"}, follow=False)
    assert refused.status_code == 400
    assert "Your teacher archived this pathway" in refused.text
    after = _choice_in(database_url, lti, built.open_step_id)
    assert (after.status, after.submission_note) == (ChoiceStatus.RETURNED, "Chapter summary")

    _archive_pathway(lti, built.pathway_id, "restore")
    page = client.get(page.url)
    handed = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "With diagram"})
    assert "Handed in: waiting for your teacher" in handed.text


def test_an_archived_pathway_without_work_stays_hidden_from_a_student(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    client, page = _student_page(lti, built)
    home_url = link(page, "/pathways/?")
    pathway_url = str(page.url)
    _archive_pathway(lti, built.pathway_id)
    assert client.get(pathway_url).status_code == 404
    assert "Archived pathways" not in client.get(home_url).text


def test_the_services_refuse_moves_on_a_choice_in_an_archived_pathway(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
        choice_id = ch.choose_option(
            s, context_id=built.context_id, person_id=me, option_id=built.plain_option_id
        ).id
        services.archive_pathway(s, context_id=built.context_id, pathway_id=built.pathway_id)
    for move in (ch.start_choice, ch.submit_choice, ch.withdraw_choice):
        with (
            unit_of_work(database_url) as s,
            pytest.raises(ChoiceNotAllowedError, match="archived"),
        ):
            move(s, context_id=built.context_id, person_id=me, choice_id=choice_id)
    assert _choice_in(database_url, lti, built.open_step_id).status is ChoiceStatus.CHOSEN


# --- double clicks elsewhere on the journey ------------------------------------------------------


def test_a_double_clicked_withdraw_says_the_choice_is_withdrawn(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """The second click of a double-clicked "Withdraw my choice" finds the pick already gone:
    the student sees it withdrawn, not a "does not exist" error page."""
    client, page = _student_page(lti, built)
    page = post(client, form(page, f"/options/{built.plain_option_id}/choose"))
    choice_id = _choice_in(database_url, lti, built.open_step_id).id
    withdraw = form(page, f"/choices/{choice_id}/withdraw")
    first = post(client, withdraw)
    assert "Your choice is withdrawn" in first.text
    second = post(client, withdraw)
    assert second.status_code == 200
    assert "Your choice is withdrawn" in second.text
    assert has_form(second, f"/options/{built.plain_option_id}/choose")


def test_a_double_clicked_create_adds_one_pathway_step_and_option(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """Create pathway, Add step and Save (a new option), each double-clicked, add one row
    each; a second, different item right after is still added."""
    teacher = lti.launch(TEACHER)
    client = teacher.client
    manage = client.get(link(teacher.response, "/pathways/manage?"))
    create = form(manage, "/pathways/manage?")
    fields = {"title": "Genetics twice", "description": "<p>Genes</p>"}
    post(client, create, fields)
    created = post(client, create, fields)
    assert created.status_code == 200
    with unit_of_work(database_url) as s:
        pathways = [
            p
            for p in services.list_pathways(s, context_id=built.context_id)
            if p.title == "Genetics twice"
        ]
    assert len(pathways) == 1
    pathway_id = pathways[0].id

    add_step = form(created, "/steps?")
    post(client, add_step, {"title": "Punnett squares"})
    step_page = post(client, add_step, {"title": "Punnett squares"})
    assert _step_titles(database_url, pathway_id) == ["Punnett squares"]
    post(client, add_step, {"title": "Pedigrees"})
    assert _step_titles(database_url, pathway_id) == ["Punnett squares", "Pedigrees"]

    new_option = client.get(link(step_page, "/options/new?"))
    option_fields = {"title": "Pea plants", "modality": "video", "challenge": "2"}
    save = form(new_option, "/options/new")
    post(client, save, option_fields)
    post(client, save, option_fields)
    with unit_of_work(database_url) as s:
        step_id = services.list_steps(s, context_id=built.context_id, pathway_id=pathway_id)[0].id
    assert _option_titles(database_url, step_id) == ["Pea plants"]
    post(client, save, {**option_fields, "challenge": "3"})  # not the same option: added
    assert _option_titles(database_url, step_id) == ["Pea plants", "Pea plants"]


def test_two_create_clicks_at_the_same_moment_add_one_pathway(
    built: Built, database_url: str
) -> None:
    """The second Create of a double click arrives while the first is still being saved: it
    waits for the first and returns its pathway instead of adding a twin (on PostgreSQL the
    second request did not see the first's uncommitted row)."""
    answers: list[int] = []

    def second_click() -> None:
        with unit_of_work(database_url) as s:
            answers.append(
                services.create_pathway(
                    s, context_id=built.context_id, title="Same moment", once=True
                ).id
            )

    with unit_of_work(database_url) as first:
        made = services.create_pathway(
            first, context_id=built.context_id, title="Same moment", once=True
        ).id
        first.flush()
        click = threading.Thread(target=second_click)
        click.start()
        click.join(timeout=0.5)  # the second request is in, and must wait for this one
    click.join(timeout=30)
    assert answers == [made]
    with unit_of_work(database_url) as s:
        titles = [p.title for p in services.list_pathways(s, context_id=built.context_id)]
    assert titles.count("Same moment") == 1
