"""Adversarial checks of pathways and learner profiles as teachers and students meet them:
odd and hostile input, stale pages, double clicks, steps nobody can unlock, copies."""

from __future__ import annotations

import threading
from html import unescape

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from lti_app.competencies.importing import copy_framework
from lti_app.competencies.models import Competency
from lti_app.competencies.services import archive_competency, create_competency
from lti_app.demo.server import RunningPlatform
from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.learners.services import get_profile, update_profile
from lti_app.pathways import choices as ch
from lti_app.pathways import options, reviewing, services
from lti_app.pathways.copying import copy_pathways
from lti_app.pathways.forms import StepForm, parse_ids
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Pathway
from lti_app.pathways.options import OptionInput
from lti_app.pathways.reachability import steps_without_options, stuck_steps
from lti_app.tool.models import Person
from tests.conftest import LtiActions, ToolServer
from tests.courses.conftest import fresh_lms  # noqa: F401 - fixture
from tests.mastery.confirming import confirm_of
from tests.pathways.conftest import MakeCompetency
from tests.pathways.test_views import STUDENT, TEACHER, Built, build_pathway
from tests.progress.pages import (
    context_id,
    form,
    has_form,
    link,
    person_id,
    post,
    unique,
    unit_of_work,
    url,
)

HUGE = "99999999999999999999999"


# --- services: text a teacher or student types ------------------------------------------------


def test_nul_and_control_characters_never_reach_the_page(
    session: Session, course: int, student: int
) -> None:
    # PostgreSQL refuses NUL in text (a 500 for the user); elsewhere it is invisible garbage.
    pathway = services.create_pathway(
        session, context_id=course, title="Cells\x00 \x07and\x1b more", description="<p>a\x00b</p>"
    )
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="S\x00")
    option = options.create_option(
        session,
        context_id=course,
        step_id=step.id,
        data=OptionInput(
            "Lab\x00",
            interest_tags=["ani\x00mals"],
            links=[{"label": "Gui\x00de", "url": "https://example.org/g"}],
        ),
    )
    choice = ch.choose_option(
        session, context_id=course, person_id=student, option_id=option.id, mastered_ids=set()
    )
    ch.submit_choice(
        session, context_id=course, person_id=student, choice_id=choice.id, note="my\x00 note"
    )
    session.commit()  # PostgreSQL checks the text here
    assert pathway.title == "Cells and more"
    assert pathway.description == "<p>ab</p>"
    assert step.title == "S"
    assert (option.title, option.interest_tags, option.links[0]["label"]) == (
        "Lab",
        ["animals"],
        "Guide",
    )
    assert choice.submission_note == "my note"


def test_profile_and_goal_text_with_nul_is_saved_without_it(
    session: Session, course: int, student: int
) -> None:
    update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=True,
        interests=["Ro\x00bots", "\x00"],
        career_goal_text="Nurse\x00",
        teacher_notes="Quiet\x00 today\nand\tcalm",
    )
    goal = add_goal(
        session,
        context_id=course,
        person_id=student,
        text="Read\x00 more",
        created_by_id=student,
        editor_is_teacher=False,
    )
    session.commit()
    profile = get_profile(session, context_id=course, person_id=student)
    assert profile is not None
    assert profile.interests == ["Robots"]
    assert profile.career_goal_text == "Nurse"
    assert profile.teacher_notes == "Quiet today\nand\tcalm"  # line breaks and tabs stay
    assert goal.text == "Read more"


def test_ids_too_long_for_the_database_are_refused_in_words() -> None:
    with pytest.raises(ValueError, match="Choose a student"):
        parse_ids([HUGE], "student")
    form = StepForm.from_request(
        MultiDict([("title", "t"), ("competency_id", HUGE), ("prerequisite_ids", HUGE)])
    )
    assert form.competency_id == -1
    assert form.prerequisite_ids == [-1]


# --- services: unlock rules nobody can meet ---------------------------------------------------


def test_steps_that_wait_for_what_only_they_teach_are_reported(
    session: Session, course: int, make_competency: MakeCompetency
) -> None:
    a, b, c, elsewhere = (make_competency(course, code) for code in ("A", "B", "C", "X"))
    pathway = services.create_pathway(session, context_id=course, title="P", competency_ids=[a])

    def step(title: str, teaches: int | None, waits: list[int]) -> int:
        made = services.create_step(
            session,
            context_id=course,
            pathway_id=pathway.id,
            title=title,
            competency_id=teaches,
            prerequisite_ids=waits,
        )
        options.create_option(
            session, context_id=course, step_id=made.id, data=OptionInput("Do it")
        )
        return made.id

    fine = step("Needs X, taught elsewhere", b, [elsewhere])
    assert stuck_steps(session, context_id=course, pathway_id=pathway.id) == []
    itself = step("Waits for A, teaches the pathway's A", None, [a])
    stuck = stuck_steps(session, context_id=course, pathway_id=pathway.id)
    assert [(s.id, [c.code for c in missing]) for s, missing in stuck] == [(itself, ["A"])]
    # B is taught by `fine` (which opens), so a step waiting for B is reachable...
    chained = step("Waits for B", c, [b])
    assert {s.id for s, _ in stuck_steps(session, context_id=course, pathway_id=pathway.id)} == {
        itself
    }
    # ...until `fine` waits for A too: A and B then wait for each other.
    services.update_step(
        session,
        context_id=course,
        step_id=fine,
        title="Now waits for A",
        description="",
        competency_id=b,
        prerequisite_ids=[a],
    )
    ids = {s.id for s, _ in stuck_steps(session, context_id=course, pathway_id=pathway.id)}
    assert ids == {fine, itself, chained}
    # Archiving the circular steps, or the prerequisite, frees the rest.
    services.archive_step(session, context_id=course, step_id=itself)
    archive_competency(session, context_id=course, competency_id=a)
    assert stuck_steps(session, context_id=course, pathway_id=pathway.id) == []


def test_two_pathways_waiting_on_each_other_are_both_reported(
    session: Session, course: int, make_competency: MakeCompetency
) -> None:
    """ "Cells" teaches CELL and waits for GEN; "Genetics" teaches GEN and waits for CELL. Each
    on its own looks fine (the other's competency seems to come from elsewhere), but no student
    can ever open either step."""
    cell, gen = make_competency(course, "CELL"), make_competency(course, "GEN")
    cells = services.create_pathway(session, context_id=course, title="Cells")
    genetics = services.create_pathway(session, context_id=course, title="Genetics")

    def step(pathway_id: int, title: str, teaches: int, waits: int) -> int:
        made = services.create_step(
            session,
            context_id=course,
            pathway_id=pathway_id,
            title=title,
            competency_id=teaches,
            prerequisite_ids=[waits],
        )
        options.create_option(
            session, context_id=course, step_id=made.id, data=OptionInput("Do it")
        )
        return made.id

    structure = step(cells.id, "Cell structure", cell, gen)
    inheritance = step(genetics.id, "Inheritance", gen, cell)

    def stuck(pathway_id: int) -> list[tuple[int, list[str]]]:
        found = stuck_steps(session, context_id=course, pathway_id=pathway_id)
        return [(s.id, [c.code for c in missing]) for s, missing in found]

    assert stuck(cells.id) == [(structure, ["GEN"])]
    assert stuck(genetics.id) == [(inheritance, ["CELL"])]
    # Once Genetics opens without CELL, both open: GEN is taught by an open step.
    services.update_step(
        session,
        context_id=course,
        step_id=inheritance,
        title="Inheritance",
        description="",
        competency_id=gen,
        prerequisite_ids=[],
    )
    assert stuck(cells.id) == stuck(genetics.id) == []
    # Put back, the loop is reported again; archiving Genetics then leaves GEN to evidence
    # from elsewhere (no open pathway teaches it), so Cells is no longer stuck.
    services.update_step(
        session,
        context_id=course,
        step_id=inheritance,
        title="Inheritance",
        description="",
        competency_id=gen,
        prerequisite_ids=[cell],
    )
    assert stuck(cells.id) == [(structure, ["GEN"])]
    services.archive_pathway(session, context_id=course, pathway_id=genetics.id)
    assert stuck(cells.id) == []


def test_a_step_with_no_option_on_offer_teaches_nothing_and_is_named(
    session: Session, course: int, make_competency: MakeCompetency
) -> None:
    first = make_competency(course, "C1")
    pathway = services.create_pathway(session, context_id=course, title="P")
    one = services.create_step(
        session, context_id=course, pathway_id=pathway.id, title="One", competency_id=first
    )
    two = services.create_step(
        session, context_id=course, pathway_id=pathway.id, title="Two", prerequisite_ids=[first]
    )
    only = options.create_option(
        session, context_id=course, step_id=one.id, data=OptionInput("Only way")
    )
    options.create_option(session, context_id=course, step_id=two.id, data=OptionInput("Later"))
    assert stuck_steps(session, context_id=course, pathway_id=pathway.id) == []
    assert steps_without_options(session, context_id=course, pathway_id=pathway.id) == []
    # The teacher takes step one's only option off offer: nobody new can master C1 here.
    options.archive_option(session, context_id=course, option_id=only.id)
    assert steps_without_options(session, context_id=course, pathway_id=pathway.id) == [one]
    stuck = stuck_steps(session, context_id=course, pathway_id=pathway.id)
    assert [(s.id, [c.code for c in missing]) for s, missing in stuck] == [(two.id, ["C1"])]


def test_a_step_waiting_for_the_parent_of_what_only_it_teaches_is_reported(
    session: Session, course: int, make_competency: MakeCompetency
) -> None:
    parent = make_competency(course, "P")
    part = Competency(context_id=course, code="P.1", title="Only part", parent_id=parent)
    elsewhere = Competency(
        context_id=course, code="P.2", title="Taught elsewhere", parent_id=parent
    )
    session.add_all([part, elsewhere])
    session.flush()
    pathway = services.create_pathway(session, context_id=course, title="P")
    # P is mastered once P.1 and P.2 are; P.1 is taught only by the step that waits for P.
    step = services.create_step(
        session,
        context_id=course,
        pathway_id=pathway.id,
        title="Only step",
        competency_id=part.id,
        prerequisite_ids=[parent],
    )
    options.create_option(session, context_id=course, step_id=step.id, data=OptionInput("o"))
    stuck = stuck_steps(session, context_id=course, pathway_id=pathway.id)
    assert [(s.id, [c.code for c in missing]) for s, missing in stuck] == [(step.id, ["P"])]
    # With P.1 archived, P rests on P.2 alone, which evidence from elsewhere can bring.
    archive_competency(session, context_id=course, competency_id=part.id)
    assert stuck_steps(session, context_id=course, pathway_id=pathway.id) == []


def test_copy_leaves_archived_competencies_behind(
    session: Session, course: int, other_course: int, make_competency: MakeCompetency
) -> None:
    live, old = make_competency(course, "LIVE"), make_competency(course, "OLD")
    pathway = services.create_pathway(
        session, context_id=course, title="P", competency_ids=[live, old]
    )
    step = services.create_step(
        session,
        context_id=course,
        pathway_id=pathway.id,
        title="S",
        competency_id=old,
        prerequisite_ids=[live, old],
    )
    options.create_option(session, context_id=course, step_id=step.id, data=OptionInput("O"))
    archive_competency(session, context_id=course, competency_id=old)
    # What the copy page does: the framework (unarchived only), then the pathways.
    id_map = copy_framework(session, from_context_id=course, to_context_id=other_course)
    [copy] = copy_pathways(
        session, from_context_id=course, to_context_id=other_course, competency_id_map=id_map
    )
    assert services.pathway_competency_ids(
        session, context_id=other_course, pathway_id=copy.id
    ) == [id_map[live]]
    [new_step] = services.list_steps(session, context_id=other_course, pathway_id=copy.id)
    assert new_step.competency_id is None
    assert services.step_prerequisite_ids(
        session, context_id=other_course, step_id=new_step.id
    ) == [id_map[live]]


# --- pages ------------------------------------------------------------------------------------


def _student_page(lti: LtiActions, built: Built) -> tuple[httpx.Client, httpx.Response]:
    home = lti.launch(STUDENT)
    page = home.client.get(link(home.response, f"/pathways/{built.pathway_id}?"))
    assert page.status_code == 200
    return home.client, page


def test_double_click_on_choose_keeps_one_choice_and_no_error(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    client, page = _student_page(lti, built)
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
    hidden = form(page, f"/options/{built.animals_option_id}/choose").fields

    def click(option_id: int, barrier: threading.Barrier, codes: list[int]) -> None:
        target = str(page.url.join(f"/pathways/options/{option_id}/choose"))
        barrier.wait()
        codes.append(client.post(target, data=hidden).status_code)

    for round_ in range(3):
        targets = [built.animals_option_id, built.plain_option_id] * 3
        barrier = threading.Barrier(len(targets))
        codes: list[int] = []
        threads = [threading.Thread(target=click, args=(o, barrier, codes)) for o in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(set(codes)) in ([302], [303]), (round_, codes)
        with unit_of_work(database_url) as s:
            rows = s.scalars(
                select(Choice).where(Choice.person_id == me, Choice.step_id == built.open_step_id)
            ).all()
            assert len(rows) == 1
            s.delete(rows[0])  # the next round starts without a choice


def test_huge_ids_in_links_and_forms_are_answered_not_crashed(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    client, page = _student_page(lti, built)
    hidden = form(page, "/choose").fields
    assert client.get(url(page, f"/pathways/{HUGE}")).status_code == 404
    answer = client.post(str(page.url.join(f"/pathways/options/{HUGE}/choose")), data=hidden)
    assert answer.status_code == 404
    answer = client.post(str(page.url.join(f"/profile/goals/{HUGE}")), data=hidden)
    assert answer.status_code == 404

    teacher = lti.launch(TEACHER)
    manage = teacher.client.get(link(teacher.response, "/pathways/manage?"))
    created = post(
        teacher.client,
        form(manage, "/pathways/manage?"),
        {"title": "Huge", "competency_ids": [HUGE]},
        follow=False,
    )
    assert created.status_code == 400
    assert "not part of this course" in created.text
    step = teacher.client.get(url(manage, f"/pathways/manage/steps/{built.locked_step_id}"))
    unlock = post(
        teacher.client,
        form(step, "/unlock"),
        {"student_ids": [HUGE, "-3", "x"], "action": "unlock"},
        follow=False,
    )
    assert unlock.status_code == 400
    assert "Choose a student" in unlock.text
    assert teacher.client.get(url(manage, f"/profile/students/{HUGE}")).status_code == 404


def test_hostile_text_reaches_students_harmless_and_formatting_survives(
    lti: LtiActions, database_url: str
) -> None:
    teacher = lti.launch(TEACHER)
    client = teacher.client
    manage = client.get(link(teacher.response, "/pathways/manage?"))
    title = f"<script>alert('t')</script> خلايا 🧬 {unique()}"
    description = (
        "<p><strong>Bold</strong> <em>it</em> <a href='https://example.org/ok'>ok</a></p>"
        "<script>alert(1)</script><style>body{display:none}</style>"
        "<p onmouseover='steal()' style='position:fixed'>hover</p>"
        "<a href='javascript:alert(2)'>js</a><a href='JaVaScRiPt&#58;alert(3)'>js2</a>"
        "<a href='data:text/html;base64,PHNjcmlwdD4='>data</a>"
        "<iframe src='https://evil.example/'></iframe><img src=x onerror=alert(4)>"
        "<ul><li>one</li></ul>"
    )
    editor = post(client, form(manage, "/pathways/manage?"), {"title": title, "description": ""})
    assert editor.status_code == 200
    step_page = post(client, form(editor, "/steps?"), {"title": f"Step ‏{title}"})
    new_option = client.get(link(step_page, "/options/new?"))
    saved = post(
        client,
        form(new_option, "/options/new"),
        {"title": "Option 🐸", "description": description, "modality": "video", "challenge": "2"},
    )
    assert saved.status_code == 200
    with unit_of_work(database_url) as s:
        pathway_id = s.scalars(select(Pathway.id).where(Pathway.title == title)).one()

    student = lti.launch(STUDENT)
    page = student.client.get(url(student.response, f"/pathways/{pathway_id}"))
    assert page.status_code == 200
    text = page.text
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; خلايا 🧬" in text
    for bad in (
        "<script>alert",
        "alert(1)",
        "alert(2)",
        "alert(3)",
        "steal()",
        "onerror",
        "<iframe",
    ):
        assert bad not in text, bad
    for bad in ("javascript:", "data:text/html", "position:fixed", "display:none"):
        assert bad not in text.lower(), bad
    assert "<strong>Bold</strong> <em>it</em>" in text
    assert 'href="https://example.org/ok"' in text
    assert "<li>one</li>" in text
    assert "Option 🐸" in text


def test_stale_pages_get_a_plain_answer(lti: LtiActions, built: Built, database_url: str) -> None:
    client, page = _student_page(lti, built)
    hidden = form(page, "/choose").fields
    # The teacher stops offering an option while the student's page is open.
    with unit_of_work(database_url) as s:
        options.archive_option(s, context_id=built.context_id, option_id=built.plain_option_id)
    answer = client.post(form(page, f"/options/{built.plain_option_id}/choose").action, data=hidden)
    assert answer.status_code == 400  # the pathway again, saying why
    assert "taken that option off offer" in answer.text
    # The student works on another option; the teacher closes it; the old page hands in.
    page = post(client, form(page, f"/options/{built.animals_option_id}/choose"))
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
        choice = s.scalars(
            select(Choice).where(Choice.person_id == me, Choice.step_id == built.open_step_id)
        ).one()
        choice_id = choice.id
    page = post(client, form(page, f"/choices/{choice_id}/start"))
    assert has_form(page, f"/choices/{choice_id}/submit")
    with unit_of_work(database_url) as s:
        reviewing.complete_choices(
            s, context_id=built.context_id, choice_ids=[choice_id], closed_by_id=me
        )
    late = post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "late"})
    assert late.status_code == 400
    assert "already done" in late.text
    late = client.post(
        str(page.url.join(f"/pathways/options/{built.animals_option_id}/choose")), data=hidden
    )
    assert late.status_code == 400
    assert "already started work" in late.text

    # The teacher's option form outlives the option; a step form outlives a competency.
    teacher = lti.launch(TEACHER)
    tclient = teacher.client
    with unit_of_work(database_url) as s:
        spare = options.create_option(
            s, context_id=built.context_id, step_id=built.locked_step_id, data=OptionInput("Spare")
        ).id
        gone = create_competency(s, context_id=built.context_id, code=unique("G"), title="Gone")
        gone_id = gone.id
    option_page = tclient.get(url(teacher.response, f"/pathways/manage/options/{spare}"))
    step_page = tclient.get(url(teacher.response, f"/pathways/manage/steps/{built.open_step_id}"))
    with unit_of_work(database_url) as s:
        options.delete_option(s, context_id=built.context_id, option_id=spare)
        s.execute(delete(Competency).where(Competency.id == gone_id))
    answer = post(
        tclient,
        form(option_page, f"/manage/options/{spare}"),
        {"title": "Renamed", "modality": "video", "challenge": "2"},
    )
    assert answer.status_code == 404
    assert "does not exist" in answer.text
    answer = post(
        tclient,
        form(step_page, f"/manage/steps/{built.open_step_id}?"),
        {"title": "Explore", "prerequisite_ids": [str(gone_id)]},
    )
    assert answer.status_code == 400
    assert "not part of this course" in answer.text
    with unit_of_work(database_url) as s:
        assert s.get(Option, built.plain_option_id) is not None


def test_editor_warns_about_a_step_nobody_can_unlock(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    teacher = lti.launch(TEACHER)
    client = teacher.client
    editor = client.get(url(teacher.response, f"/pathways/manage/{built.pathway_id}"))
    assert "can never unlock" not in editor.text
    # The locked step waits for the competency; now it also assesses it: a circle.
    step_page = client.get(link(editor, f"/manage/steps/{built.locked_step_id}?"))
    saved = post(
        client,
        form(step_page, f"/manage/steps/{built.locked_step_id}?"),
        {
            "title": "Go <deeper>",
            "competency_id": str(built.competency_id),
            "prerequisite_ids": [str(built.competency_id)],
        },
    )
    assert saved.status_code == 200
    warning = (
        "Students can never unlock “Go &lt;deeper&gt;”: it waits for "
        f"{built.competency_code} Cell transport"
    )
    assert warning in saved.text
    editor = client.get(url(teacher.response, f"/pathways/manage/{built.pathway_id}"))
    assert warning in editor.text
    assert "unlock it for students by hand" in editor.text


def test_editor_names_a_step_with_no_option_on_offer(
    fresh_lms: RunningPlatform,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    lti = LtiActions(fresh_lms, tool_server)  # a course of its own, not the shared demo one
    teacher = lti.launch(TEACHER)
    built = build_pathway(database_url, fresh_lms)
    editor = url(teacher.response, f"/pathways/manage/{built.pathway_id}")
    assert "no option on offer" not in teacher.client.get(editor).text
    with unit_of_work(database_url) as s:
        options.archive_option(s, context_id=built.context_id, option_id=built.locked_option_id)
    page = teacher.client.get(editor).text
    lti.close()
    assert "“Go deeper”: this step has no option on offer" in page


def test_archiving_a_step_tells_the_teacher_its_students_can_still_finish(
    fresh_lms: RunningPlatform,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    lti = LtiActions(fresh_lms, tool_server)  # a course of its own, not the shared demo one
    student = lti.launch(STUDENT)
    teacher = lti.launch(TEACHER)
    built = build_pathway(database_url, fresh_lms)
    page = student.client.get(url(student.response, f"/pathways/{built.pathway_id}"))
    post(student.client, form(page, f"/options/{built.plain_option_id}/choose"))
    editor = teacher.client.get(url(teacher.response, f"/pathways/manage/{built.pathway_id}"))
    archived = post(teacher.client, form(editor, f"/manage/step/{built.open_step_id}/archive"))
    page = student.client.get(url(student.response, f"/pathways/{built.pathway_id}"))
    lti.close()
    assert "students no longer see it" not in archived.text
    assert "can still finish" in unescape(archived.text)
    # As said: the student who chose in the step still sees it, with their work to do.
    assert "Explore" in page.text
    assert has_form(page, "/start")


def test_a_prerequisite_that_locks_students_out_of_their_work_is_confirmed_first(
    fresh_lms: RunningPlatform,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    lti = LtiActions(fresh_lms, tool_server)  # a course of its own, not the shared demo one
    student = lti.launch(STUDENT)
    teacher = lti.launch(TEACHER)
    built = build_pathway(database_url, fresh_lms)
    page = student.client.get(url(student.response, f"/pathways/{built.pathway_id}"))
    page = post(student.client, form(page, f"/options/{built.plain_option_id}/choose"))
    post(student.client, form(page, "/start"))
    with unit_of_work(database_url) as s:
        name = s.get_one(Person, person_id(s, fresh_lms, STUDENT)).name
    step_url = url(teacher.response, f"/pathways/manage/steps/{built.open_step_id}")
    edit = form(teacher.client.get(step_url), f"/manage/steps/{built.open_step_id}?")
    typed = {"title": "Explore more", "prerequisite_ids": [str(built.competency_id)]}

    asked = post(teacher.client, edit, typed)
    words = " ".join(unescape(asked.text).split())
    assert f"the step locks for 1 student with work in it: {name}." in words
    assert 'value="Explore more"' in asked.text  # what the teacher typed, to confirm
    with unit_of_work(database_url) as s:
        assert (
            services.get_step(s, context_id=built.context_id, step_id=built.open_step_id).title
            == "Explore"
        )
    saved = post(
        teacher.client,
        form(asked, f"/manage/steps/{built.open_step_id}?"),
        {**typed, **confirm_of(asked.text)},
    )
    assert "Your changes are saved." in saved.text
    # A change that locks nobody more is saved straight away.
    again = post(
        teacher.client,
        form(saved, f"/manage/steps/{built.open_step_id}?"),
        {**typed, "title": "Explore it"},
    )
    lti.close()
    assert "Your changes are saved." in again.text
    with unit_of_work(database_url) as s:
        step_id = built.open_step_id
        assert (
            services.get_step(s, context_id=built.context_id, step_id=step_id).title == "Explore it"
        )
        assert services.step_prerequisite_ids(s, context_id=built.context_id, step_id=step_id) == [
            built.competency_id
        ]


def test_profile_form_with_odd_input_answers_in_words(lti: LtiActions, database_url: str) -> None:
    home = lti.launch(STUDENT)
    client = home.client
    page = client.get(url(home.response, "/profile/"))
    assert page.status_code == 200
    profile_form = form(page, "/profile/?")

    def send(data: dict[str, str | list[str]]) -> httpx.Response:
        return post(client, profile_form, data, follow=False)

    too_many = send({"interests": ", ".join(f"tag{i}" for i in range(31))})
    assert (too_many.status_code, "at most 30 tags" in too_many.text) == (400, True)
    too_long = send({"interests": "x" * 65})
    assert (too_long.status_code, "too long" in too_long.text) == (400, True)
    cluster = send({"career_clusters": ["Space Pirates"]})
    assert (cluster.status_code, "National Career Clusters" in cluster.text) == (400, True)
    way = send({"preferred_modalities": ["telepathy"]})
    assert (way.status_code, "way of learning" in way.text) == (400, True)
    huge = send({"career_goal_text": "y" * 5001})
    assert (huge.status_code, "too long" in huge.text) == (400, True)
    ok = send(
        {
            "interests": "ロボット, ,Robots,robots, \x00Chess",
            "career_goal_text": "طبيب\x00 🩺",
            "preferences_text": "<b>quiet</b>",
        }
    )
    assert ok.status_code in (302, 303)
    goal_form = form(page, "/profile/goals?")  # the new-goal form, not an earlier goal's
    bad_date = post(client, goal_form, {"text": "Run", "target_date": "2025-02-30"}, follow=False)
    assert (bad_date.status_code, "as a date" in bad_date.text) == (400, True)
    empty = post(client, goal_form, {"text": " \x00 ", "target_date": ""}, follow=False)
    assert (empty.status_code, "cannot be empty" in empty.text) == (400, True)
    shown = client.get(url(home.response, "/profile/"))
    assert "طبيب 🩺" in shown.text
    assert "&lt;b&gt;quiet&lt;/b&gt;" in shown.text
    with unit_of_work(database_url) as s:
        profile = get_profile(
            s, context_id=context_id(s, lti.lms), person_id=person_id(s, lti.lms, STUDENT)
        )
        assert profile is not None
        assert profile.interests == ["ロボット", "Robots", "Chess"]


def test_teacher_archiving_a_chosen_option_keeps_the_students_choice_visible(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    client, page = _student_page(lti, built)
    page = post(client, form(page, f"/options/{built.animals_option_id}/choose"))
    with unit_of_work(database_url) as s:
        options.archive_option(s, context_id=built.context_id, option_id=built.animals_option_id)
        options.reorder_options(
            s,
            context_id=built.context_id,
            step_id=built.open_step_id,
            option_ids=[built.plain_option_id, built.animals_option_id],
        )
    page = client.get(str(page.url))
    assert "Your choice: <bdi>Animal cells field guide</bdi>" in page.text
    # It can no longer be picked again, but the other option can.
    assert not has_form(page, f"/options/{built.animals_option_id}/choose")
    assert has_form(page, f"/options/{built.plain_option_id}/choose")
    with unit_of_work(database_url) as s:
        statuses = s.scalars(
            select(Choice.status).where(Choice.step_id == built.open_step_id)
        ).all()
    assert ChoiceStatus.CHOSEN in statuses
