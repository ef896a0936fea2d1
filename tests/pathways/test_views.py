"""The pathway pages through real launches: the student's flow from a locked step to a
submission, the teacher's editor and unlocks, and ids from elsewhere refused."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from lti_app.competencies.services import create_competency
from lti_app.demo.server import RunningPlatform
from lti_app.learners.services import update_profile
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import options, services
from lti_app.pathways.choices import choose_option
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Pathway, Step, StepUnlock
from lti_app.pathways.options import OptionInput
from lti_app.pathways.reviewing import pending_for_teacher
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import frame, second_lms
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

TEACHER, STUDENT, CLASSMATE = "user-t01", "user-s02", "user-s01"


@dataclass(frozen=True)
class Built:
    context_id: int
    competency_id: int
    competency_code: str
    pathway_id: int
    open_step_id: int
    locked_step_id: int
    animals_option_id: int
    plain_option_id: int
    locked_option_id: int


def build_pathway(
    database_url: str, lms: RunningPlatform, course: str = "course-bio9", *, steps: int = 0
) -> Built:
    """A pathway with an open step (two options, one about animals) and a step that waits for
    mastery of a competency; `steps` more open steps for the query-count test."""
    code = unique("CT")
    with unit_of_work(database_url) as s:
        ctx = context_id(s, lms, course)
        comp = create_competency(s, context_id=ctx, code=code, title="Cell transport")
        pathway = services.create_pathway(
            s, context_id=ctx, title=f"Cells {code}", description="<p>All about <em>cells</em></p>"
        )
        open_step = services.create_step(s, context_id=ctx, pathway_id=pathway.id, title="Explore")
        locked = services.create_step(
            s,
            context_id=ctx,
            pathway_id=pathway.id,
            title="Go deeper",
            prerequisite_ids=[comp.id],
        )
        animals = options.create_option(
            s,
            context_id=ctx,
            step_id=open_step.id,
            data=OptionInput(
                title="Animal cells field guide",
                interest_tags=["animals"],
                description="<p>Look <script>alert(1)</script>closely</p>",
                links=[{"label": "Guide", "url": "https://example.org/guide"}],
            ),
        )
        plain = options.create_option(
            s, context_id=ctx, step_id=open_step.id, data=OptionInput(title="Read chapter 3")
        )
        deeper = options.create_option(
            s, context_id=ctx, step_id=locked.id, data=OptionInput(title="Osmosis lab")
        )
        for n in range(steps):
            extra = services.create_step(
                s, context_id=ctx, pathway_id=pathway.id, title=f"Extra {n}"
            )
            options.create_option(
                s, context_id=ctx, step_id=extra.id, data=OptionInput(title=f"Extra option {n}")
            )
        return Built(
            ctx,
            comp.id,
            code,
            pathway.id,
            open_step.id,
            locked.id,
            animals.id,
            plain.id,
            deeper.id,
        )


def test_student_chooses_changes_mind_starts_and_submits_with_a_link(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    home = lti.launch(STUDENT)
    assert "My pathways" in home.text
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)
        update_profile(
            s,
            context_id=built.context_id,
            person_id=student,
            editor_is_teacher=False,
            interests=["Animals"],
        )
    client = home.client
    page = client.get(link(home.response, f"/pathways/{built.pathway_id}?"))
    assert page.status_code == 200
    text = page.text
    # The locked step says why, in words; the open one offers options with a recommendation.
    assert "Locked." in text
    assert f"Unlocks when you master {built.competency_code} Cell transport" in text
    assert "Recommended for you" in text
    assert "Matches your interest in Animals" in text
    assert "<script>" not in text
    assert "closely" in text
    assert not has_form(page, f"/options/{built.locked_option_id}/choose")

    page = post(client, form(page, f"/options/{built.animals_option_id}/choose"))
    assert page.status_code == 200
    assert "Your choice: <bdi>Animal cells field guide</bdi>" in page.text
    page = post(client, form(page, f"/options/{built.plain_option_id}/choose"))
    assert "Your choice: <bdi>Read chapter 3</bdi>" in page.text

    with unit_of_work(database_url) as s:
        choice = s.scalars(
            select(Choice).where(Choice.person_id == student, Choice.step_id == built.open_step_id)
        ).one()
    assert choice.option_id == built.plain_option_id
    hidden = form(page, f"/choices/{choice.id}/start").fields
    page = post(client, form(page, f"/choices/{choice.id}/start"))
    assert "In progress" in page.text
    assert not has_form(page, f"/options/{built.animals_option_id}/choose")  # no switching now

    page = post(
        client,
        form(page, f"/choices/{choice.id}/submit"),
        {"note": "My <b>notes</b>", "url": "https://docs.example.org/mine"},
    )
    assert "Handed in" in page.text
    assert "My &lt;b&gt;notes&lt;/b&gt;" in page.text

    with unit_of_work(database_url) as s:
        pending = pending_for_teacher(s, context_id=built.context_id)
    mine = [p for p in pending if p.choice.id == choice.id]
    assert mine
    assert mine[0].kind == "submission"
    assert mine[0].choice.submission_url == "https://docs.example.org/mine"

    # A locked step refuses a choice, in words.
    locked = client.post(
        str(page.url.join(f"/pathways/options/{built.locked_option_id}/choose")), data=hidden
    )
    assert locked.status_code == 400
    assert "This step is locked" in locked.text


def test_teacher_unlock_makes_a_locked_step_available(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    student_home = lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)
    teacher = lti.launch(TEACHER)
    editor = teacher.client.get(link(teacher.response, "/pathways/manage?"))
    assert editor.status_code == 200
    pathway_page = teacher.client.get(link(editor, f"/pathways/manage/{built.pathway_id}?"))
    step_page = teacher.client.get(link(pathway_page, f"/manage/steps/{built.locked_step_id}?"))
    assert "Unlock for students" in step_page.text
    unlock = form(step_page, f"/manage/steps/{built.locked_step_id}/unlock")
    done = post(teacher.client, unlock, {"student_ids": [str(student)], "action": "unlock"})
    assert done.status_code == 200
    assert "Unlocked by a teacher" in done.text

    page = student_home.client.get(link(student_home.response, f"/pathways/{built.pathway_id}?"))
    assert "Unlocked by your teacher" in page.text
    assert has_form(page, f"/options/{built.locked_option_id}/choose")


def test_teacher_builds_a_pathway_with_the_editor(lti: LtiActions, database_url: str) -> None:
    teacher = lti.launch(TEACHER)
    client = teacher.client
    code = unique("EV")
    with unit_of_work(database_url) as s:
        ctx = context_id(s, lti.lms)
        comp = create_competency(s, context_id=ctx, code=code, title="Evolution")
    manage = client.get(link(teacher.response, "/pathways/manage?"))
    title = f"Evolution {code}"
    created = post(
        client,
        form(manage, "/pathways/manage?"),
        {
            "title": title,
            "description": "Why <b>species</b> change",
            "competency_ids": [str(comp.id)],
        },
    )
    assert created.status_code == 200
    assert title in created.text
    refused = post(client, form(created, "/steps?"), {"title": "  "}, follow=False)
    assert refused.status_code == 400
    assert "Give it a title" in refused.text
    step_page = post(
        client,
        form(created, "/steps?"),
        {"title": "Natural selection", "competency_id": str(comp.id), "prerequisite_ids": []},
    )
    assert "Natural selection" in step_page.text
    assert "Add an option" in step_page.text
    new_option = client.get(link(step_page, "/options/new?"))
    bad = post(
        client,
        form(new_option, "/options/new"),
        {
            "title": "Finch beaks",
            "modality": "video",
            "links": "javascript:alert(1)",
            "challenge": "2",
        },
        follow=False,
    )
    assert bad.status_code == 400
    assert "http" in bad.text
    saved = post(
        client,
        form(new_option, "/options/new"),
        {
            "title": "Finch beaks",
            "description": "<p onclick='x()'>Watch <strong>closely</strong></p>",
            "links": "Film | https://example.org/finches",
            "modality": "video",
            "interest_tags": "birds, nature",
            "career_clusters": ["Health Science", "Agriculture, Food & Natural Resources"],
            "challenge": "3",
            "expected_minutes": "45",
            "requires_approval": "1",
        },
    )
    assert saved.status_code == 200
    assert "Finch beaks" in saved.text
    assert "about 45 minutes" in saved.text
    assert "needs your approval" in saved.text
    with unit_of_work(database_url) as s:
        pathway = s.scalars(select(Pathway).where(Pathway.title == title)).one()
        option = s.scalars(
            select(Option)
            .join(Step, Step.id == Option.step_id)
            .where(Step.pathway_id == pathway.id)
        ).one()
    assert pathway.description == "Why species change"  # <b> is not on the allow-list
    assert "onclick" not in option.description
    assert option.challenge == 3
    assert option.links == [{"label": "Film", "url": "https://example.org/finches"}]
    assert option.career_clusters == ["Health Science", "Agriculture, Food & Natural Resources"]

    # Archive, restore and move, each as a button.
    manage = client.get(link(saved, "/pathways/manage?"))
    archived = post(client, form(manage, f"/manage/pathway/{pathway.id}/archive"))
    assert "Archived" in archived.text
    restored = post(client, form(archived, f"/manage/pathway/{pathway.id}/restore"))
    assert "Restored" in restored.text
    moved = post(client, form(restored, f"/manage/pathway/{pathway.id}/up"))
    assert "The order is changed" in moved.text


def test_pages_refuse_ids_of_other_students_courses_and_platforms(
    lti: LtiActions, built: Built, database_url: str, tool_server: ToolServer
) -> None:
    # Another course of the same platform (the chemistry club, taught by user-t02).
    lti.launch("user-t02", context_id="course-chem-club")
    club = build_pathway(database_url, lti.lms, "course-chem-club")
    # The classmate's choice in this course.
    with unit_of_work(database_url) as s:
        classmate = person_id(s, lti.lms, CLASSMATE)
        their_choice = choose_option(
            s, context_id=built.context_id, person_id=classmate, option_id=built.plain_option_id
        ).id
    # Another platform whose course has the same context_id.
    with second_lms(tool_server, database_url) as other:
        spec = other.platform.make_launch(TEACHER)
        from lti_app.demo.browser import follow_launch

        assert follow_launch(lti.browser(), other.platform.login_url(spec)).status_code == 200
        foreign = build_pathway(database_url, other)

    student = lti.launch(STUDENT)
    client = student.client
    page = client.get(link(student.response, f"/pathways/{built.pathway_id}?"))
    hidden = form(page, "/choose").fields
    base = page.url
    for pathway_id in (club.pathway_id, foreign.pathway_id):
        assert client.get(url(page, f"/pathways/{pathway_id}")).status_code == 404
    for option_id in (club.animals_option_id, foreign.animals_option_id):
        answer = client.post(str(base.join(f"/pathways/options/{option_id}/choose")), data=hidden)
        assert answer.status_code == 404
    for action in ("start", "submit", "withdraw"):
        answer = client.post(
            str(base.join(f"/pathways/choices/{their_choice}/{action}")), data=hidden
        )
        assert answer.status_code == 404
    # Teacher pages are for teachers only; a teacher sees only their own course's rows.
    assert client.get(url(page, "/pathways/manage")).status_code == 403
    teacher = lti.launch(TEACHER)
    manage = teacher.client.get(link(teacher.response, "/pathways/manage?"))
    thidden = form(manage, "/pathways/manage?").fields
    for path in (
        f"/pathways/manage/{club.pathway_id}",
        f"/pathways/manage/steps/{foreign.open_step_id}",
        f"/pathways/manage/options/{club.plain_option_id}",
    ):
        assert teacher.client.get(url(manage, path)).status_code == 404
    answer = teacher.client.post(
        str(manage.url.join(f"/pathways/manage/pathway/{foreign.pathway_id}/archive")),
        data=thidden,
    )
    assert answer.status_code == 404
    # Unlocking for someone who is not a student of this course is refused.
    with unit_of_work(database_url) as s:
        chem_teacher = person_id(s, lti.lms, "user-t02")
    answer = teacher.client.post(
        str(manage.url.join(f"/pathways/manage/steps/{built.locked_step_id}/unlock")),
        data={**thidden, "student_ids": [str(chem_teacher)], "action": "unlock"},
    )
    assert answer.status_code == 404
    with unit_of_work(database_url) as s:
        assert not s.scalars(select(StepUnlock).where(StepUnlock.person_id == chem_teacher)).first()
        untouched = s.get(Choice, their_choice)
        assert untouched is not None
        assert untouched.status is ChoiceStatus.CHOSEN


def test_student_pathway_page_runs_a_constant_number_of_queries(
    lti: LtiActions, database_url: str, tool_server: ToolServer
) -> None:
    lti.launch(TEACHER)
    small = build_pathway(database_url, lti.lms)
    large = build_pathway(database_url, lti.lms, steps=6)
    student = lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
        record_evidence(
            s,
            context_id=large.context_id,
            competency_id=large.competency_id,
            student_ids=[me],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=me,
        )
    engine = tool_server.app.extensions["lti_app.db"].engine
    counts: list[int] = []

    def count(pathway_id: int) -> int:
        target = url(student.response, f"/pathways/{pathway_id}")
        seen: list[str] = []

        def on_execute(conn: Connection, cursor: object, statement: str, *args: object) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            assert student.client.get(target).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)
        return len(seen)

    counts = [count(small.pathway_id), count(large.pathway_id)]
    assert counts[0] == counts[1], counts


def test_the_step_editor_offers_only_competencies_a_level_can_be_recorded_on(
    tool_server: ToolServer, database_url: str
) -> None:
    """ "Mark done" with a level records it on the step's competency; a competency with
    sub-competencies takes no evidence, so offering one set up a failure for later. A step
    whose competency gained sub-competencies after it was saved shows it, pointed out, instead
    of silently switching to the pathway's competencies on the next save."""
    # A course of its own (a second LMS): its competencies stay out of the shared course.
    with second_lms(tool_server, database_url) as lms:
        teacher = frame(LtiActions(lms, tool_server).launch(TEACHER), tool_server.url)
        with unit_of_work(database_url) as s:
            ctx = context_id(s, lms)
            unit = create_competency(s, context_id=ctx, code="U1", title="Cells").id
            part = create_competency(
                s, context_id=ctx, code="U1.1", title="Cell parts", parent_id=unit
            ).id
            other = create_competency(s, context_id=ctx, code="U2", title="Energy").id
            pathway = services.create_pathway(s, context_id=ctx, title="Cells")
            step = services.create_step(
                s, context_id=ctx, pathway_id=pathway.id, title="Tour", competency_id=other
            ).id
        editor = teacher.get(f"/pathways/manage/steps/{step}").text
        assert f'<option value="{part}">U1.1 Cell parts</option>' in editor
        assert f'<option value="{unit}"' not in editor
        assert "Competencies with sub-competencies are not listed" in editor
        pathway_page = teacher.get(f"/pathways/manage/{pathway.id}").text
        assert f'<option value="{unit}"' not in pathway_page  # the new-step form

        refused = teacher.post(
            f"/pathways/manage/steps/{step}", {"title": "Tour", "competency_id": str(unit)}
        )
        assert refused.status_code == 400
        assert "“U1 Cells” has sub-competencies, so it cannot be the competency this step" in (
            refused.text
        )
        assert 'href="#step-competency"' in refused.text
        with unit_of_work(database_url) as s:
            assert s.get_one(Step, step).competency_id == other

        # U2 gains a sub-competency after the step was saved with it.
        with unit_of_work(database_url) as s:
            create_competency(s, context_id=ctx, code="U2.1", title="Respiration", parent_id=other)
        editor = teacher.get(f"/pathways/manage/steps/{step}").text
        assert (
            f'<option value="{other}" selected>U2 Energy (has sub-competencies: choose one of '
            "them)</option>"
        ) in editor
        assert "The competency chosen has sub-competencies" in editor
        assert "has sub-competencies: open the step to choose one" in (
            teacher.get(f"/pathways/manage/{pathway.id}").text
        )
